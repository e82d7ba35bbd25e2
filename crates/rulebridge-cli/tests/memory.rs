//! Memory is bounded by bytes, not lines: 150 records of 10 MB piped into a dry run stay under
//! 250 MB of peak memory, and every record gets its outcome; a record above the maximum size
//! fails as `too_large` without being held.
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

const RULES: &str = r#"
kind: provider
name: archive
base_url: https://archive.example.com
objects:
  document:
    operations:
      create: { method: POST, path: /documents }
---
kind: flow
name: documents
source: { require: [id] }
target: { provider: archive, object: document }
mapping:
  id: id
  body: body
duplicates: { match: [id] }
"#;

/// Peak resident memory of a process so far, in bytes.
fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[test]
fn large_records_from_a_pipe_stay_within_bounded_memory() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("rules.yaml"), RULES).expect("rules");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rulebridge"))
        .args(["run", "documents", "--dry-run", "--input", "-", "--rules"])
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let pid = child.id();
    let mut stdin = child.stdin.take().expect("stdin");
    let records = 150usize;
    let too_large = 75usize;
    let writer = std::thread::spawn(move || {
        let ten_mb = "x".repeat(10 << 20);
        let twenty_mb = "y".repeat(20 << 20);
        for i in 0..records {
            let body = if i == too_large { &twenty_mb } else { &ten_mb };
            let line = format!("{{\"id\":{i},\"body\":\"{body}\"}}\n");
            if stdin.write_all(line.as_bytes()).is_err() {
                return;
            }
        }
    });

    let stdout = child.stdout.take().expect("stdout");
    let mut reader = BufReader::with_capacity(1 << 20, stdout);
    let mut line = Vec::new();
    let mut statuses = Vec::new();
    let mut peak = 0u64;
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => panic!("reading outcomes: {e}"),
        }
        // Only the start of an outcome is needed: index and status come first.
        let head = String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned();
        statuses.push(head);
        if let Some(p) = peak_rss(pid) {
            peak = peak.max(p);
        }
    }
    writer.join().expect("writer");
    let status = child.wait_timeout_or_kill(Duration::from_secs(120));
    assert!(status, "the run ends");
    assert_eq!(statuses.len(), records, "one outcome per record");
    for (i, s) in statuses.iter().enumerate() {
        assert!(s.starts_with(&format!("{{\"index\":{i},")), "{i}: {s}");
        let want = if i == too_large {
            "\"failed\""
        } else {
            "\"dry_run\""
        };
        assert!(s.contains(want), "{i}: {s}");
    }
    assert!(
        peak > 0 && peak < 250 << 20,
        "peak memory {} MB",
        peak >> 20
    );
    eprintln!("peak memory: {} MB", peak >> 20);
}

trait WaitTimeout {
    fn wait_timeout_or_kill(&mut self, d: Duration) -> bool;
}

impl WaitTimeout for std::process::Child {
    fn wait_timeout_or_kill(&mut self, d: Duration) -> bool {
        let start = std::time::Instant::now();
        while start.elapsed() < d {
            if let Ok(Some(_)) = self.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.kill();
        false
    }
}
