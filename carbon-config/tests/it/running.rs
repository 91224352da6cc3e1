//! Running-server detection against real processes and sockets.

use std::net::TcpListener;
use std::process::{Child, Command};

use carbon_config::running::{PidFile, listening_ports, pid_file_state};

/// A real process whose command line looks like Carbon's: `sh -c 'read _' <args…>` keeps
/// the extra arguments in `/proc/<pid>/cmdline`.
fn fake_carbon(home: &std::path::Path, extra: &[&str]) -> Child {
    let child = Command::new("sh")
        .args(["-c", "read _", "java"])
        .arg(format!("-Dcarbon.home={}", home.display()))
        .args(extra)
        .arg("org.wso2.carbon.bootstrap.Bootstrap")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_exec(child.id());
    child
}

/// `spawn` can return before `/proc/<pid>/cmdline` shows the new program (it reads empty for
/// a moment, measured here in most of 500 tries): wait until the arguments are visible.
fn wait_for_exec(pid: u32) {
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(5) {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if cmdline.windows(9).any(|w| w == b"Bootstrap") {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    panic!("process {pid} never showed its command line");
}

fn write_pid_file(home: &std::path::Path, pid: u32) {
    let mut bytes = format!("{pid}\n").into_bytes();
    bytes.resize(100, 0); // Carbon pads the file with NULs
    std::fs::write(home.join("wso2carbon.pid"), bytes).unwrap();
}

/// The state of `home`'s pid file naming a fake Carbon of `carbon_home` while it runs, and its pid.
fn state_while_running(
    home: &std::path::Path,
    carbon_home: &std::path::Path,
    args: &[&str],
) -> (PidFile, u32) {
    let mut child = fake_carbon(carbon_home, args);
    write_pid_file(home, child.id());
    let state = pid_file_state(home);
    child.kill().unwrap();
    child.wait().unwrap();
    (state, child.id())
}

#[test]
fn a_live_carbon_process_of_this_home_is_running() {
    let home = tempfile::tempdir().unwrap();
    let (state, pid) = state_while_running(home.path(), home.path(), &["-DportOffset=3"]);
    assert_eq!(
        state,
        PidFile::Running {
            pid,
            port_offset: Some(3)
        }
    );
}

#[test]
fn a_pid_file_left_by_a_stopped_server_is_stale() {
    let home = tempfile::tempdir().unwrap();
    let mut child = fake_carbon(home.path(), &[]);
    let pid = child.id();
    child.kill().unwrap();
    child.wait().unwrap();
    write_pid_file(home.path(), pid);
    assert_eq!(
        pid_file_state(home.path()),
        PidFile::Stale { pid: Some(pid) }
    );
}

#[test]
fn a_carbon_process_of_another_home_does_not_count() {
    let home = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let (state, pid) = state_while_running(home.path(), other.path(), &[]);
    assert_eq!(state, PidFile::Stale { pid: Some(pid) });
}

#[test]
fn no_pid_file_is_absent() {
    let home = tempfile::tempdir().unwrap();
    assert_eq!(pid_file_state(home.path()), PidFile::Absent);
}

#[test]
fn a_listening_port_is_found_and_a_closed_one_is_not() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().port();
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    assert_eq!(listening_ports(&[open, closed]), vec![open]);
}
