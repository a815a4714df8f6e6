//! `synrst probe` against real Linux kernels, in network namespaces this test creates.
//!
//! Remote: the lab's topology, client — r1 — fw — r2 — server (198.18.N.0/24 and
//! 2001:db8:N::/64 links, static routes, no default route, no link to the root namespace). The
//! server listens on 80, 82, 84 and 86 (IPv4 and IPv6); 81 is closed; fw's forward chain rejects
//! 82 with a TCP reset, 84 with ICMP admin-prohibited and drops 86. Each scenario runs
//! `synrst probe` in the client namespace and checks the verdict and the located hop.
//!
//! Local: one namespace with loopback and a second address; listeners on ::1 only, 127.0.0.1
//! only, another address of the namespace, nothing, and a local firewall rule.
//!
//! Safety: probes only ever target addresses inside these namespaces (checked by
//! [`assert_lab_address`]); namespaces carry a per-process prefix and are removed on drop, even
//! on failure, with every process started in them; every wait is bounded. Skipped, with a note,
//! unless running as root with `ip`, `nft`, `python3` and `timeout`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_synrst");
static SEQ: AtomicU32 = AtomicU32::new(0);

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

fn skip(test: &str) -> bool {
    if std::env::var_os("SYNRST_SKIP_NETNS").is_some() {
        eprintln!("skipping {test}: SYNRST_SKIP_NETNS is set");
        return true;
    }
    let missing: Vec<&str> = ["ip", "nft", "python3", "timeout"]
        .into_iter()
        .filter(|c| !have(c))
        .collect();
    if !is_root() || !missing.is_empty() {
        eprintln!(
            "skipping {test}: it needs root and ip, nft, python3, timeout (missing: {missing:?}, root: {})",
            is_root()
        );
        return true;
    }
    false
}

/// Only the lab's ranges, ever: 198.18.0.0/15, 2001:db8::/32, and loopback (inside our
/// namespaces).
fn assert_lab_address(target: &str) {
    let host = target.rsplit_once(':').map(|(h, _)| h).unwrap_or(target);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host == "localhost" {
        return;
    }
    let ip: IpAddr = host.parse().expect("tests probe addresses only");
    let ok = match ip {
        IpAddr::V4(a) => (a.octets()[0] == 198 && (a.octets()[1] & 0xfe) == 18) || a.is_loopback(),
        IpAddr::V6(a) => (a.segments()[0] == 0x2001 && a.segments()[1] == 0x0db8) || a.is_loopback(),
    };
    assert!(ok, "refusing to probe {target}: outside the test ranges");
}

fn run(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().expect("spawn");
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Namespaces and the processes started in them; all removed on drop.
struct Netns {
    names: Vec<String>,
    children: Vec<Child>,
    dir: PathBuf,
}

impl Netns {
    fn new(roles: &[&str]) -> Netns {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let tag = format!("srlp{}x{n}", std::process::id());
        let dir = std::env::temp_dir().join(&tag);
        std::fs::create_dir_all(&dir).unwrap();
        let mut ns = Netns {
            names: Vec::new(),
            children: Vec::new(),
            dir,
        };
        for r in roles {
            let name = format!("{tag}-{r}");
            // Registered before creation, so a half-built set is still removed.
            ns.names.push(name.clone());
            run(&["ip", "netns", "add", &name]);
            run(&["ip", "-n", &name, "link", "set", "lo", "up"]);
            // Addresses usable at once, no router solicitations, no ICMP rate limit (so every
            // SYN that deserves an ICMP error gets one: deterministic runs).
            let _ = Command::new("ip")
                .args(["netns", "exec", &name, "sysctl", "-q", "-w"])
                .args([
                    "net.ipv6.conf.all.accept_dad=0",
                    "net.ipv6.conf.default.accept_dad=0",
                    "net.ipv6.conf.all.accept_ra=0",
                    "net.ipv6.conf.default.accept_ra=0",
                    "net.ipv6.conf.all.router_solicitations=0",
                    "net.ipv6.conf.default.router_solicitations=0",
                    "net.ipv4.icmp_ratelimit=0",
                    "net.ipv6.icmp.ratelimit=0",
                ])
                .stdout(Stdio::null())
                .status();
        }
        ns
    }

    fn name(&self, role: &str) -> String {
        self.names
            .iter()
            .find(|n| n.ends_with(&format!("-{role}")))
            .cloned()
            .expect("role")
    }

    fn ip(&self, role: &str, args: &[&str]) {
        let ns = self.name(role);
        let mut v = vec!["ip", "-n", ns.as_str()];
        v.extend_from_slice(args);
        run(&v);
    }

    fn exec(&self, role: &str, args: &[&str]) {
        let ns = self.name(role);
        let mut v = vec!["ip", "netns", "exec", ns.as_str()];
        v.extend_from_slice(args);
        run(&v);
    }

    /// Starts a python3 program in `role` that prints `ready` when it listens; bounded wait.
    fn spawn_ready(&mut self, role: &str, code: &str) {
        let n = self.children.len();
        let log = self.dir.join(format!("ready{n}"));
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.name(role),
                "timeout",
                "300",
                "python3",
                "-c",
                code,
            ])
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn python3");
        self.children.push(child);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if std::fs::read_to_string(&log).is_ok_and(|s| s.contains("ready")) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("listener in {role} did not start");
    }

    /// Runs `synrst probe ARGS` in `role`; returns (exit code, stdout, stderr).
    fn probe(&self, role: &str, target: &str, args: &[&str]) -> (i32, String, String) {
        assert_lab_address(target);
        let out: Output = Command::new("timeout")
            .args(["90", "ip", "netns", "exec", &self.name(role), BIN, "probe", target])
            .args(args)
            .output()
            .expect("run synrst probe");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn probe_json(&self, role: &str, target: &str, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.push("--json");
        let (code, out, err) = self.probe(role, target, &a);
        assert!(code == 0 || code == 1, "probe {target} {args:?} exited {code}: {err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("probe {target}: bad JSON ({e}): {out}\n{err}"))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in &self.names {
            // Anything still running inside our own namespaces was started by this test.
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = Command::new("kill").args(["-KILL", pid]).status();
                }
            }
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The attempt to `port` (the probe's main attempt).
fn attempt(report: &Value, port: u64) -> &Value {
    report["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["server"]["port"].as_u64() == Some(port))
        .unwrap_or_else(|| panic!("no attempt to port {port}: {report:#}"))
}

const LISTENER: &str = r#"
import socket, select, time
ss = []
for fam, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
    for p in (80, 82, 84, 86):
        s = socket.socket(fam)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((addr, p))
        s.listen(64)
        ss.append(s)
print("ready", flush=True)
end = time.time() + 240
while time.time() < end:
    r, _, _ = select.select(ss, [], [], 1)
    for s in r:
        c, _ = s.accept()
        c.close()
"#;

const FW_RULES: &str = "table inet synrst_probe_test {
	chain forward {
		type filter hook forward priority filter; policy accept;
		ip daddr 198.18.4.2 tcp dport 82 reject with tcp reset
		ip daddr 198.18.4.2 tcp dport 84 reject with icmpx type admin-prohibited
		ip daddr 198.18.4.2 tcp dport 86 drop
		ip6 daddr 2001:db8:4::2 tcp dport 82 reject with tcp reset
		ip6 daddr 2001:db8:4::2 tcp dport 84 reject with icmpx type admin-prohibited
		ip6 daddr 2001:db8:4::2 tcp dport 86 drop
	}
}
";

fn routed_lab() -> Netns {
    let mut lab = Netns::new(&["client", "r1", "fw", "r2", "server"]);
    for r in ["r1", "fw", "r2"] {
        lab.exec(
            r,
            &[
                "sysctl",
                "-q",
                "-w",
                "net.ipv4.ip_forward=1",
                "net.ipv6.conf.all.forwarding=1",
            ],
        );
    }
    // Veth pairs created directly between two lab namespaces: nothing in the root namespace.
    let links = [
        ("client", "cl0", "r1", "r1a", 1, 2, 1),
        ("r1", "r1b", "fw", "fwa", 2, 1, 2),
        ("fw", "fwb", "r2", "r2a", 3, 1, 2),
        ("r2", "r2b", "server", "sv0", 4, 1, 2),
    ];
    for (a, ia, b, ib, n, ha, hb) in links {
        let nb = lab.name(b);
        lab.ip(
            a,
            &[
                "link", "add", "name", ia, "type", "veth", "peer", "name", ib, "netns", &nb,
            ],
        );
        lab.ip(a, &["addr", "add", &format!("198.18.{n}.{ha}/24"), "dev", ia]);
        lab.ip(
            a,
            &["addr", "add", &format!("2001:db8:{n}::{ha}/64"), "dev", ia, "nodad"],
        );
        lab.ip(b, &["addr", "add", &format!("198.18.{n}.{hb}/24"), "dev", ib]);
        lab.ip(
            b,
            &["addr", "add", &format!("2001:db8:{n}::{hb}/64"), "dev", ib, "nodad"],
        );
        for (ns, dev) in [(a, ia), (b, ib)] {
            // Checksums complete on the wire, as a real NIC delivers them (veths otherwise pass
            // unfinished checksums along).
            if have("ethtool") {
                let _ = Command::new("ip")
                    .args(["netns", "exec", &lab.name(ns), "ethtool", "-K", dev, "tx", "off"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
            lab.ip(ns, &["link", "set", dev, "up"]);
        }
    }
    let routes: [(&str, &[&str]); 16] = [
        ("client", &["route", "add", "198.18.0.0/15", "via", "198.18.1.1"]),
        (
            "client",
            &["-6", "route", "add", "2001:db8::/32", "via", "2001:db8:1::1"],
        ),
        ("r1", &["route", "add", "198.18.3.0/24", "via", "198.18.2.2"]),
        ("r1", &["route", "add", "198.18.4.0/24", "via", "198.18.2.2"]),
        ("r1", &["-6", "route", "add", "2001:db8:3::/64", "via", "2001:db8:2::2"]),
        ("r1", &["-6", "route", "add", "2001:db8:4::/64", "via", "2001:db8:2::2"]),
        ("fw", &["route", "add", "198.18.1.0/24", "via", "198.18.2.1"]),
        ("fw", &["route", "add", "198.18.4.0/24", "via", "198.18.3.2"]),
        ("fw", &["-6", "route", "add", "2001:db8:1::/64", "via", "2001:db8:2::1"]),
        ("fw", &["-6", "route", "add", "2001:db8:4::/64", "via", "2001:db8:3::2"]),
        ("r2", &["route", "add", "198.18.1.0/24", "via", "198.18.3.1"]),
        ("r2", &["route", "add", "198.18.2.0/24", "via", "198.18.3.1"]),
        ("r2", &["-6", "route", "add", "2001:db8:1::/64", "via", "2001:db8:3::1"]),
        ("r2", &["-6", "route", "add", "2001:db8:2::/64", "via", "2001:db8:3::1"]),
        ("server", &["route", "add", "198.18.0.0/15", "via", "198.18.4.1"]),
        (
            "server",
            &["-6", "route", "add", "2001:db8::/32", "via", "2001:db8:4::1"],
        ),
    ];
    for (ns, args) in routes {
        lab.ip(ns, args);
    }
    let rules = lab.dir.join("fw.nft");
    std::fs::write(&rules, FW_RULES).unwrap();
    lab.exec("fw", &["nft", "-f", rules.to_str().unwrap()]);
    lab.spawn_ready("server", LISTENER);
    lab
}

/// The scenarios of the issue, one topology, checked one after the other; every failure is
/// reported at the end.
#[test]
fn probe_locates_who_refused_on_a_routed_path() {
    if skip("probe_locates_who_refused_on_a_routed_path") {
        return;
    }
    let lab = routed_lab();
    let mut failures: Vec<String> = Vec::new();
    let mut check = |what: &str, ok: bool, detail: &dyn Fn() -> String| {
        if !ok {
            failures.push(format!("{what}: {}", detail()));
        }
    };
    const B80: &[&str] = &["--baseline-port", "80"];
    let b80 = B80;
    struct Case {
        target: &'static str,
        port: u64,
        args: &'static [&'static str],
        verdict: &'static str,
        hop: Option<(u64, Option<&'static str>)>,
    }
    let cases = [
        Case {
            target: "198.18.4.2:80",
            port: 80,
            args: &[],
            verdict: "accepted",
            hop: Some((4, Some("198.18.4.2"))),
        },
        Case {
            target: "198.18.4.2:81",
            port: 81,
            args: B80,
            verdict: "closed-port",
            hop: Some((4, Some("198.18.4.2"))),
        },
        Case {
            target: "198.18.4.2:82",
            port: 82,
            args: B80,
            verdict: "path-firewall",
            hop: Some((2, Some("198.18.2.2"))),
        },
        // Without a TCP baseline: ICMP echo gives the server's distance.
        Case {
            target: "198.18.4.2:82",
            port: 82,
            args: &[],
            verdict: "path-firewall",
            hop: Some((2, Some("198.18.2.2"))),
        },
        Case {
            target: "198.18.4.2:84",
            port: 84,
            args: B80,
            verdict: "path-firewall",
            hop: Some((2, Some("198.18.2.2"))),
        },
        Case {
            target: "198.18.4.2:86",
            port: 86,
            args: B80,
            verdict: "filtered-or-down",
            hop: None,
        },
        Case {
            target: "[2001:db8:4::2]:81",
            port: 81,
            args: B80,
            verdict: "closed-port",
            hop: Some((4, Some("2001:db8:4::2"))),
        },
        Case {
            target: "[2001:db8:4::2]:82",
            port: 82,
            args: B80,
            verdict: "path-firewall",
            hop: Some((2, Some("2001:db8:2::2"))),
        },
        Case {
            target: "[2001:db8:4::2]:84",
            port: 84,
            args: B80,
            verdict: "path-firewall",
            hop: Some((2, Some("2001:db8:2::2"))),
        },
    ];
    for c in &cases {
        let r = lab.probe_json("client", c.target, c.args);
        let a = attempt(&r, c.port);
        let name = format!("{} {:?}", c.target, c.args);
        check(&format!("{name}: verdict"), a["verdict"] == c.verdict, &|| {
            format!("got {} ({}), want {}", a["verdict"], a["explanation"], c.verdict)
        });
        let loc = &r["probe"]["locate"];
        if let Some((hop, addr)) = c.hop {
            check(
                &format!("{name}: located hop"),
                loc["hop"].as_u64() == Some(hop),
                &|| format!("locate {loc}"),
            );
            check(
                &format!("{name}: located address"),
                loc["address"].as_str() == addr,
                &|| format!("locate {loc}"),
            );
            check(
                &format!("{name}: host hop"),
                loc["host_hop"].as_u64() == Some(4),
                &|| format!("locate {loc}"),
            );
        }
        check(
            &format!("{name}: packets bounded"),
            r["probe"]["packets_sent"].as_u64().is_some_and(|n| n <= 96),
            &|| format!("{}", r["probe"]["packets_sent"]),
        );
    }

    // The drop: the SYNs pass fw (hop 2, time exceeded at TTL 2) and vanish.
    let r = lab.probe_json("client", "198.18.4.2:86", b80);
    let loc = &r["probe"]["locate"];
    check(
        "drop: last responding hop is fw",
        loc["device"] == "last-responding" && loc["hop"] == 2 && loc["address"] == "198.18.2.2",
        &|| format!("{loc}"),
    );

    // What really happens at a filtering Linux router: TTL 2 expires at fw (the TTL check comes
    // before the forward chain), TTL 3 gets the RST; the pitfall is explained.
    let r = lab.probe_json("client", "198.18.4.2:82", b80);
    let trace = r["probe"]["trace"].as_array().unwrap();
    check(
        "rst-path trace",
        trace.len() == 3
            && trace[1]["reply"] == "time-exceeded"
            && trace[1]["from"] == "198.18.2.2"
            && trace[2]["reply"] == "rst"
            && trace[2]["reply_ttl"] == 63,
        &|| format!("{trace:?}"),
    );
    let notes = r["probe"]["notes"].to_string();
    check(
        "rst-path notes explain the TTL check pitfall",
        notes.contains("checks the TTL before its filter") && notes.contains("forges the server's address"),
        &|| notes.clone(),
    );
    // Every SYN-ACK (the baseline's) was reset.
    check("resets", r["probe"]["resets_sent"].as_u64() >= Some(1), &|| {
        format!("{}", r["probe"])
    });
    let base = attempt(&r, 80);
    check(
        "baseline attempt accepted then reset by the probe",
        base["verdict"] == "accepted" && base["history"].as_str().is_some_and(|h| h.starts_with("ShR")),
        &|| format!("{base}"),
    );

    // Every output format.
    let (code, out, err) = lab.probe(
        "client",
        "198.18.4.2:82",
        &["--baseline-port", "80", "--format", "table"],
    );
    check(
        "table",
        code == 0 && out.contains("Located: hop 2 (198.18.2.2)"),
        &|| format!("{code} {out} {err}"),
    );
    let (code, out, err) = lab.probe(
        "client",
        "198.18.4.2:82",
        &[
            "--baseline-port",
            "80",
            "--format",
            "markdown",
            "--fail-on",
            "path-firewall",
        ],
    );
    check(
        "markdown + --fail-on exits 1",
        code == 1
            && out.contains("**Located:**")
            && out.contains("The probe located the device that answers: hop 2 \\(`198.18.2.2`\\)")
            && !out.contains("traceroute"),
        &|| format!("{code} {out} {err}"),
    );
    let (code, out, err) = lab.probe(
        "client",
        "198.18.4.2:82",
        &["--baseline-port", "80", "--format", "html"],
    );
    let probe_section = out.find("<section class=\"probe\">");
    check(
        "html has the probe's section",
        code == 0
            && probe_section.is_some_and(|at| {
                out[at..].contains("<h2>Probe of <code>198.18.4.2:82</code></h2>")
                    && out[at..].contains("<strong>Located:</strong> hop 2 (198.18.2.2)")
                    && out[at..].contains("<td>RST</td>")
            }),
        &|| format!("{code} {out} {err}"),
    );
    let (code, out, err) = lab.probe(
        "client",
        "198.18.4.2:82",
        &["--baseline-port", "80", "--format", "ndjson"],
    );
    let lines: Vec<Value> = out.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    check(
        "ndjson",
        code == 0
            && lines.iter().filter(|l| l["type"] == "attempt").count() == 2
            && lines.iter().any(|l| l["type"] == "probe" && l["locate"]["hop"] == 2)
            && lines.last().is_some_and(|l| l["type"] == "summary"),
        &|| format!("{code} {out} {err}"),
    );

    // Without CAP_NET_RAW: a clear message and exit code 2, nothing sent.
    if have("setpriv") {
        let out = Command::new("timeout")
            .args(["30", "ip", "netns", "exec", &lab.name("client")])
            .args([
                "setpriv",
                "--inh-caps=-net_raw",
                "--bounding-set=-net_raw",
                BIN,
                "probe",
                "198.18.4.2:82",
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        check(
            "no CAP_NET_RAW",
            out.status.code() == Some(2) && err.contains("sudo") && err.contains("setcap cap_net_raw+ep"),
            &|| format!("{:?} {err}", out.status),
        );
    } else {
        eprintln!("note: setpriv missing, the permission message is not checked here");
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The developer cases on one machine: localhost, ::1 vs 127.0.0.1, another address, nothing
/// listening, a local firewall rule.
#[test]
fn probe_explains_local_refusals() {
    if skip("probe_explains_local_refusals") {
        return;
    }
    let mut ns = Netns::new(&["host"]);
    // Another address of this host (on loopback: no extra kernel module needed).
    ns.ip("host", &["addr", "add", "198.18.200.1/32", "dev", "lo"]);
    ns.spawn_ready(
        "host",
        r#"
import socket, time
def listen(fam, addr, port):
    s = socket.socket(fam)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((addr, port))
    s.listen(16)
    return s
keep = [
    listen(socket.AF_INET6, "::1", 5173),        # Vite-style: ::1 only
    listen(socket.AF_INET, "127.0.0.1", 3000),   # 127.0.0.1 only
    listen(socket.AF_INET, "198.18.200.1", 8080),# another address of this host
    listen(socket.AF_INET, "0.0.0.0", 4000),     # listens, but a local rule resets
]
# A listener that never accept()s, its accept queue filled: the kernel drops new SYNs.
full = socket.socket()
full.bind(("127.0.0.1", 4100))
full.listen(0)
for _ in range(3):
    c = socket.socket()
    c.settimeout(0.5)
    try:
        c.connect(("127.0.0.1", 4100))
    except OSError:
        pass
    keep.append(c)
keep.append(full)
print("ready", flush=True)
time.sleep(240)
"#,
    );
    let rules = ns.dir.join("host.nft");
    std::fs::write(
        &rules,
        "table inet synrst_probe_local {\n chain input {\n  type filter hook input priority filter; policy accept;\n  tcp dport 4000 reject with tcp reset\n }\n}\n",
    )
    .unwrap();
    ns.exec("host", &["nft", "-f", rules.to_str().unwrap()]);

    let mut failures: Vec<String> = Vec::new();
    let by_ip = |r: &Value, ip: &str| -> Value {
        r["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["server"]["ip"] == ip)
            .cloned()
            .unwrap_or(Value::Null)
    };

    // A listener on ::1 only, probed as localhost: ::1 accepted, 127.0.0.1 refused and explained.
    let r = ns.probe_json("host", "localhost:5173", &[]);
    let v6 = by_ip(&r, "::1");
    let v4 = by_ip(&r, "127.0.0.1");
    if !(v6["verdict"] == "accepted"
        && v4["verdict"] == "closed-port"
        && v4["explanation"]
            .as_str()
            .is_some_and(|e| e.contains("[::1]:5173 only") && e.contains("python3 (pid ")))
    {
        failures.push(format!("localhost:5173 (::1 only): {v6}\n{v4}"));
    }
    if r["probe"]["mode"] != "local" || r["probe"]["packets_sent"] != 0 {
        failures.push(format!("local probe sends no raw packet: {}", r["probe"]));
    }
    // The same listener probed at 127.0.0.1.
    let r = ns.probe_json("host", "127.0.0.1:5173", &[]);
    let a = by_ip(&r, "127.0.0.1");
    if a["verdict"] != "closed-port" || !a["evidence"].to_string().contains("local_family_mismatch") {
        failures.push(format!("127.0.0.1:5173: {a}"));
    }
    // A listener on 127.0.0.1 only, probed at ::1 (what Node 17+ tries first for localhost).
    let r = ns.probe_json("host", "[::1]:3000", &[]);
    let a = by_ip(&r, "::1");
    if !(a["verdict"] == "closed-port"
        && a["client_error"] == "ECONNREFUSED"
        && a["explanation"]
            .as_str()
            .is_some_and(|e| e.contains("127.0.0.1:3000 only")))
    {
        failures.push(format!("[::1]:3000: {a}"));
    }
    // Bound to another address of this host.
    let r = ns.probe_json("host", "127.0.0.1:8080", &[]);
    let a = by_ip(&r, "127.0.0.1");
    if !(a["verdict"] == "closed-port"
        && a["explanation"]
            .as_str()
            .is_some_and(|e| e.contains("bound to 198.18.200.1:8080 only")))
    {
        failures.push(format!("127.0.0.1:8080: {a}"));
    }
    let r = ns.probe_json("host", "198.18.200.1:8080", &[]);
    if by_ip(&r, "198.18.200.1")["verdict"] != "accepted" || r["probe"]["mode"] != "local" {
        failures.push(format!("198.18.200.1:8080 (a local address, local mode): {r}"));
    }
    // Nothing listens anywhere.
    let r = ns.probe_json("host", "localhost:9", &[]);
    for ip in ["::1", "127.0.0.1"] {
        let a = by_ip(&r, ip);
        if !(a["verdict"] == "closed-port"
            && a["explanation"]
                .as_str()
                .is_some_and(|e| e.contains("nothing listens on port 9")))
        {
            failures.push(format!("localhost:9 {ip}: {a}"));
        }
    }
    // Something listens, and a local rule resets it anyway.
    let r = ns.probe_json("host", "127.0.0.1:4000", &[]);
    let a = by_ip(&r, "127.0.0.1");
    if a["verdict"] != "host-firewall" {
        failures.push(format!("127.0.0.1:4000 behind a local reset rule: {a}"));
    }
    // A listener whose accept queue is full: the SYN is dropped, connect() times out.
    let r = ns.probe_json("host", "127.0.0.1:4100", &["--timeout", "1"]);
    let a = by_ip(&r, "127.0.0.1");
    if !(a["client_error"] == "ETIMEDOUT" && a["evidence"].to_string().contains("local_accept_queue_full")) {
        failures.push(format!("127.0.0.1:4100 (accept queue full): {a}"));
    }
    // The table shows the listeners with process and pid.
    let (code, out, err) = ns.probe("host", "localhost:5173", &[]);
    if !(code == 0 && out.contains("Listening on port 5173:") && out.contains("python3 (pid ")) {
        failures.push(format!("table: {code} {out} {err}"));
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Arguments are checked before anything is sent (no root, no namespace needed: these fail
/// before any socket is opened).
#[test]
fn probe_rejects_bad_targets_with_exit_code_2() {
    for (target, want) in [
        ("nohostport", "no port"),
        ("2001:db8::1", "[2001:db8::1]:PORT"),
        ("198.18.4.2:0", "port 0"),
    ] {
        let out = Command::new(BIN).args(["probe", target]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{target}: {err}");
        assert!(err.contains(want), "{target}: {err}");
    }
    let out = Command::new(BIN)
        .args(["probe", "198.18.4.2:80", "--max-hops", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(BIN)
        .args(["probe", "198.18.4.2:80", "--timeout", "nan"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Every single-scenario capture of the lab (every kind of answer, the on-path RST injector, an
/// unowned address, no route, IPv6) is probed from the lab's client right after it is recorded
/// (`lab/run.sh --probe BIN`). The probe must reach the verdict of the lab's truth, and for
/// refusals by a device on the path it must locate that device: the firewall, hop 2.
/// Needs `SYNRST_LAB=1` (a few minutes), like the lab re-run in tests/lab.rs.
#[test]
fn probe_reaches_the_lab_truth_on_every_scenario() {
    if skip("probe_reaches_the_lab_truth_on_every_scenario") {
        return;
    }
    if std::env::var_os("SYNRST_LAB").is_none() {
        eprintln!("skipping the lab under probe: set SYNRST_LAB=1");
        return;
    }
    let out = std::env::temp_dir().join(format!("synrst-lab-probe-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("lab/run.sh");
    let status = Command::new("bash")
        .arg(script)
        .arg("--out")
        .arg(&out)
        .args(["--probe", BIN])
        .status()
        .expect("run the lab");
    assert!(status.success(), "lab/run.sh --probe failed (see its output above)");

    let truth = std::fs::read_to_string(out.join("truth.tsv")).unwrap();
    let mut lines = truth.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    let col = |n: &str| header.iter().position(|h| *h == n).unwrap();
    let (cf, csi, csp, co, cv) = (
        col("file"),
        col("server_ip"),
        col("server_port"),
        col("outcome"),
        col("verdict"),
    );
    let mut k_of_file: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let (mut problems, mut probed) = (Vec::new(), 0);
    for line in lines.filter(|l| !l.is_empty()) {
        let c: Vec<&str> = line.split('\t').collect();
        let k = k_of_file.entry(c[cf].to_string()).or_insert(0);
        let path = out.join(format!("{}.probe.{k}.json", c[cf]));
        *k += 1;
        if !path.exists() {
            continue; // mixed and `-i any` captures are not probed
        }
        probed += 1;
        let r: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let port: u64 = c[csp].parse().unwrap();
        // The probe's own attempt is the last one to the target (the baseline may share port 80).
        let a = r["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|a| a["server"]["port"] == port && a["server"]["ip"] == c[csi]);
        let label = format!("{} -> {}:{port}", c[cf], c[csi]);
        let Some(a) = a else {
            problems.push(format!("{label}: no attempt in the probe's report"));
            continue;
        };
        if a["outcome"] != c[co] || a["verdict"] != c[cv] {
            problems.push(format!(
                "{label}: probe says {} / {}, truth {} / {}: {}",
                a["outcome"], a["verdict"], c[co], c[cv], a["explanation"]
            ));
        }
        if c[cv] == "path-firewall" {
            let l = &r["probe"]["locate"];
            let fw_ok = l["address"] == "198.18.2.2" || l["address"] == "2001:db8:2::2";
            if l["device"] != "path" || l["hop"] != 2 || !fw_ok {
                problems.push(format!("{label}: located {l}, want the firewall at hop 2"));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&out);
    assert!(probed >= 20, "only {probed} attempts probed");
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}
