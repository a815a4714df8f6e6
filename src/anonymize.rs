//! Consistent pseudonymisation of addresses (in progress).

use crate::model::Report;

/// Replaces addresses in the report by pseudonyms.
pub fn anonymize_report(_report: &mut Report) {}
