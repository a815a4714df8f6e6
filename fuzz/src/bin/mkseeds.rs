//! Seed generator: `mkseeds OUT_DIR CAPTURE...` writes `decode_track` inputs (frame lists of
//! at most 32 frames, frames cut to 600 bytes) made from the frames of each capture.
use std::path::{Path, PathBuf};

use synrst::capture::{read_capture, Source};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((out, files)) = args.split_first() else {
        eprintln!("usage: mkseeds OUT_DIR CAPTURE...");
        std::process::exit(2);
    };
    std::fs::create_dir_all(out).expect("out dir");
    let mut written = 0;
    for file in files {
        let mut frames: Vec<(i64, u32, u32, Vec<u8>)> = Vec::new();
        let res = read_capture(&Source::Path(PathBuf::from(file)), |f| {
            if synrst_fuzz::listed(f.link) && frames.len() < 32 * 16 {
                let cut = f.data.len().min(600);
                frames.push((
                    f.ts.0,
                    f.link.0,
                    f.orig_len.max(f.data.len() as u32),
                    f.data[..cut].to_vec(),
                ));
            }
        });
        if let Err(e) = res {
            eprintln!("{file}: {e}");
            continue;
        }
        let stem = Path::new(file)
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or("capture");
        for (i, chunk) in frames.chunks(32).enumerate() {
            let link = chunk[0].1;
            let refs: Vec<(i64, u32, u32, &[u8])> =
                chunk.iter().map(|(t, l, o, d)| (*t, *l, *o, d.as_slice())).collect();
            // ctl 7: max_in_flight 8, default timeouts.
            let bytes = synrst_fuzz::encode_frames(link, 7, &refs);
            std::fs::write(Path::new(out).join(format!("{stem}-{i}")), bytes).expect("write seed");
            written += 1;
        }
    }
    eprintln!("{written} seeds written to {out}");
}
