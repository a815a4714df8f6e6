//! Live capture tests (feature `live`), run as root in network namespaces this test creates.
//!
//! Topology: a client namespace and a server namespace joined by a veth pair, addresses in
//! 198.18.0.0/15 only. The server listens on port 80; port 81 is closed (the kernel's RST);
//! its own nftables rejects port 82 with ICMP port-unreachable and drops port 83. `synrst live`
//! captures in the client namespace while a client connects to each port.
//!
//! Skipped, with a note, unless running as root with `ip`, `nft` and `python3`, or when
//! `SYNRST_SKIP_LIVE` is set. Every namespace and process is removed on drop, even on failure;
//! every wait is bounded.
#![cfg(feature = "live")]

use std::path::{Path, PathBuf};
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

fn skip() -> bool {
    if std::env::var_os("SYNRST_SKIP_LIVE").is_some() {
        eprintln!("skipping: SYNRST_SKIP_LIVE is set");
        return true;
    }
    if !is_root() || !have("ip") || !have("nft") || !have("python3") {
        eprintln!("skipping live tests: they need root, ip, nft and python3");
        return true;
    }
    false
}

fn run(args: &[&str]) -> Output {
    let out = Command::new(args[0]).args(&args[1..]).output().expect("spawn");
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Two namespaces and what runs in them; removed on drop.
struct Net {
    client: String,
    server: String,
    veth: String,
    dir: PathBuf,
    children: Vec<Child>,
}

const SERVER: &str = "198.18.251.1";
const CLIENT: &str = "198.18.251.2";

impl Net {
    fn new() -> Net {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let tag = format!("srlv{}x{n}", std::process::id());
        let dir = std::env::temp_dir().join(&tag);
        std::fs::create_dir_all(&dir).unwrap();
        let net = Net {
            client: format!("{tag}c"),
            server: format!("{tag}s"),
            veth: format!("{tag}a"),
            dir,
            children: Vec::new(),
        };
        let (c, s, a) = (&net.client, &net.server, &net.veth);
        let b = format!("{tag}b");
        run(&["ip", "netns", "add", c]);
        run(&["ip", "netns", "add", s]);
        run(&["ip", "link", "add", a, "type", "veth", "peer", "name", &b]);
        run(&["ip", "link", "set", a, "netns", c]);
        run(&["ip", "link", "set", &b, "netns", s]);
        run(&["ip", "-n", c, "addr", "add", &format!("{CLIENT}/24"), "dev", a]);
        run(&["ip", "-n", s, "addr", "add", &format!("{SERVER}/24"), "dev", &b]);
        for (ns, dev) in [(c, a.as_str()), (s, b.as_str())] {
            run(&["ip", "-n", ns, "link", "set", dev, "up"]);
            run(&["ip", "-n", ns, "link", "set", "lo", "up"]);
        }
        let rules = "table inet synrst_test {\n chain input {\n  type filter hook input priority 0;\n  tcp dport 82 reject with icmp type port-unreachable\n  tcp dport 83 drop\n }\n}\n";
        let path = net.dir.join("rules.nft");
        std::fs::write(&path, rules).unwrap();
        run(&["ip", "netns", "exec", s, "nft", "-f", path.to_str().unwrap()]);
        net
    }

    fn listen(&mut self, port: u16) {
        let code = format!(
            "import socket,time\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('{SERVER}',{port}))\ns.listen(8)\ns.settimeout(30)\nend=time.time()+30\nwhile time.time()<end:\n  try:\n    c,_=s.accept(); c.close()\n  except Exception:\n    break\n"
        );
        let child = Command::new("ip")
            .args(["netns", "exec", &self.server, "python3", "-c", &code])
            .spawn()
            .unwrap();
        self.children.push(child);
        // Bounded wait until the port accepts.
        let probe = format!(
            "import socket,sys\ns=socket.socket();s.settimeout(0.5)\ntry:\n  s.connect(('{SERVER}',{port}));sys.exit(0)\nexcept Exception:\n  sys.exit(1)\n"
        );
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            let ok = Command::new("ip")
                .args(["netns", "exec", &self.server, "python3", "-c", &probe])
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("listener on {port} did not come up");
    }

    /// Connects from a fixed source port; returns the errno name or "ok".
    fn connect(&self, sport: u16, port: u16) -> String {
        let code = format!(
            "import socket,errno\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('{CLIENT}',{sport}))\ns.settimeout(2.5)\ntry:\n  s.connect(('{SERVER}',{port})); print('ok')\nexcept socket.timeout:\n  print('ETIMEDOUT')\nexcept OSError as e:\n  print(errno.errorcode.get(e.errno,'?'))\n"
        );
        let out = Command::new("timeout")
            .args(["10", "ip", "netns", "exec", &self.client, "python3", "-c", &code])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn live(&self, extra: &[&str]) -> Child {
        Command::new("timeout")
            .args(["60", "ip", "netns", "exec", &self.client, BIN, "live", "-i", &self.veth])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.client]).status();
        let _ = Command::new("ip").args(["netns", "del", &self.server]).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Waits (bounded) until the capture is really running: its stderr names the user it runs as.
fn wait_started(path_hint: &Path) {
    let _ = path_hint;
    std::thread::sleep(Duration::from_millis(1500));
}

fn wait_with_timeout(mut child: Child, secs: u64) -> Output {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("synrst live did not stop within {secs} s");
}

fn attempts(report: &Value) -> Vec<(u64, String, String)> {
    let mut v: Vec<(u64, String, String)> = report["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["server"]["port"].as_u64().unwrap(),
                a["outcome"].as_str().unwrap().to_string(),
                a["verdict"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn analyze_json(path: &Path) -> Value {
    let out = Command::new(BIN)
        .args(["analyze", "--json"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn live_reports_each_scenario_like_offline_analysis_of_its_own_capture() {
    if skip() {
        return;
    }
    let mut net = Net::new();
    net.listen(80);
    let report_path = net.path("report.json");
    let pcapng = net.path("live.pcapng");
    let child = net.live(&[
        "--duration",
        "14",
        "--json",
        "-o",
        report_path.to_str().unwrap(),
        "-w",
        pcapng.to_str().unwrap(),
    ]);
    wait_started(&report_path);
    let seen: Vec<String> = [(41080, 80), (41081, 81), (41082, 82), (41083, 83)]
        .iter()
        .map(|(s, p)| net.connect(*s, *p))
        .collect();
    assert_eq!(seen, ["ok", "ECONNREFUSED", "ECONNREFUSED", "ETIMEDOUT"]);
    let out = wait_with_timeout(child, 40);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let live: Value = serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    let got = attempts(&live);
    let expected = vec![
        (80, "accepted".to_string(), "accepted".to_string()),
        (81, "refused".to_string(), "closed-port".to_string()),
        (82, "unreachable".to_string(), "host-firewall".to_string()),
        (83, "no-answer".to_string(), "filtered-or-down".to_string()),
    ];
    assert_eq!(got, expected);
    // The live summary names the interface and its drop counters.
    assert_eq!(live["capture"]["live"]["interface"], net.veth.as_str());
    assert!(live["capture"]["live"]["dropped_kernel"].is_u64());
    // The -w capture re-analyses to the same outcomes and verdicts.
    let offline = analyze_json(&pcapng);
    assert_eq!(attempts(&offline), expected);
    // The client's errors match what the python client really got.
    for a in live["attempts"].as_array().unwrap() {
        let port = a["server"]["port"].as_u64().unwrap();
        let want = match port {
            80 => Value::Null,
            81 | 82 => Value::from("ECONNREFUSED"),
            _ => Value::from("ETIMEDOUT"),
        };
        assert_eq!(a["client_error"], want, "port {port}");
    }
}

#[test]
fn live_sigint_writes_the_final_report_and_streams_lines() {
    if skip() {
        return;
    }
    let net = Net::new();
    let child = net.live(&[]);
    let pid = child.id();
    wait_started(&net.dir);
    assert_eq!(net.connect(42081, 81), "ECONNREFUSED");
    // The attempt is printed when it closes (--timeout 3 s after the RST).
    std::thread::sleep(Duration::from_millis(3600));
    run(&["kill", "-INT", &pid.to_string()]);
    let out = wait_with_timeout(child, 20);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let streamed = stdout
        .lines()
        .find(|l| l.contains(":81 refused closed-port"))
        .expect("streamed line");
    assert!(streamed.contains("ECONNREFUSED"), "{stdout}");
    assert!(stdout.contains("Destinations:"), "final report missing:\n{stdout}");
}

#[test]
fn live_drops_root_after_opening_the_capture() {
    if skip() {
        return;
    }
    let net = Net::new();
    let child = net.live(&["--duration", "4"]);
    // `timeout` runs `ip netns exec`, which execs synrst: find synrst's pid under timeout.
    wait_started(&net.dir);
    let pids = Command::new("pgrep")
        .args(["-f", &format!("live -i {}", net.veth)])
        .output()
        .unwrap();
    let pids: Vec<String> = String::from_utf8_lossy(&pids.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    let mut uids = Vec::new();
    for pid in &pids {
        if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
            if exe.ends_with("synrst") {
                let uid = status.lines().find(|l| l.starts_with("Uid:")).unwrap().to_string();
                uids.push(uid);
            }
        }
    }
    let out = wait_with_timeout(child, 20);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(uids.len(), 1, "synrst process not found among {pids:?}");
    // Real, effective, saved and filesystem uids are all nobody's.
    let fields: Vec<&str> = uids[0].split_whitespace().skip(1).collect();
    assert_eq!(fields, ["65534"; 4], "{}", uids[0]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("as user nobody"));
}

#[test]
fn live_without_privileges_says_exactly_what_to_run() {
    if skip() || !have("setpriv") {
        return;
    }
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            BIN,
            "live",
            "-i",
            "lo",
        ])
        .args(["--duration", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sudo synrst live -i lo"), "{err}");
    assert!(err.contains("setcap cap_net_raw,cap_net_admin+ep"), "{err}");
}

/// The lab's scenarios (every kind of answer, IPv4 and IPv6, `-i any`) run while `synrst live`
/// captures in the lab's client namespace next to tcpdump; each live report must give every
/// attempt the outcome and verdict that the offline analysis of tcpdump's capture gives.
/// Needs `SYNRST_LAB=1` (about 90 s), like the lab re-run in tests/lab.rs.
#[test]
fn live_captures_every_lab_scenario_like_offline_analysis() {
    if skip() {
        return;
    }
    if std::env::var_os("SYNRST_LAB").is_none() {
        eprintln!("skipping the lab under live capture: set SYNRST_LAB=1");
        return;
    }
    let out = std::env::temp_dir().join(format!("synrst-lab-live-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("lab/run.sh");
    let status = Command::new("bash")
        .arg(script)
        .arg("--out")
        .arg(&out)
        .args(["--live", BIN])
        .status()
        .expect("run the lab");
    assert!(status.success(), "lab/run.sh --live failed (see its output above)");
    let mut problems = Vec::new();
    let mut compared = 0;
    for entry in std::fs::read_dir(&out).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !(name.ends_with(".pcap") || name.ends_with(".pcapng")) {
            continue;
        }
        let live_path = out.join(format!("{name}.live.json"));
        let live: Value = serde_json::from_str(&std::fs::read_to_string(&live_path).unwrap()).unwrap();
        let offline = analyze_json(&path);
        let key = |r: &Value| -> Vec<String> {
            let mut v: Vec<String> = r["attempts"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    format!(
                        "{}:{} -> {}:{} {} {}",
                        a["client"]["ip"],
                        a["client"]["port"],
                        a["server"]["ip"],
                        a["server"]["port"],
                        a["outcome"],
                        a["verdict"]
                    )
                })
                .collect();
            v.sort();
            v
        };
        let (l, o) = (key(&live), key(&offline));
        if l != o {
            problems.push(format!("{name}:\n  live:    {l:?}\n  offline: {o:?}"));
        }
        compared += 1;
    }
    let _ = std::fs::remove_dir_all(&out);
    assert!(compared >= 20, "only {compared} captures compared");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
