//! Is a Carbon server running on a product home? The guide requires every server connected
//! to the database to be stopped before the copy.
//!
//! Carbon writes `<home>/wso2carbon.pid` at start-up and never removes it; its content is the
//! pid followed by NUL padding. So the file alone proves nothing: the pid must belong to a live
//! process whose command line runs `org.wso2.carbon.bootstrap.Bootstrap` with this
//! `carbon.home`. Ports are checked as well, because a server started another way (or on
//! another machine's view of the same home) may have no usable pid file.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

pub(crate) const PID_FILE: &str = "wso2carbon.pid";
const BOOTSTRAP_CLASS: &str = "org.wso2.carbon.bootstrap.Bootstrap";
const PROBE_TIMEOUT: Duration = Duration::from_millis(300);

/// What the pid file says about a home.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PidFile {
    Absent,
    /// The file names a pid that is not a Carbon server of this home (left by a stopped one).
    Stale {
        pid: Option<u32>,
    },
    /// A live Carbon server of this home.
    Running {
        pid: u32,
        port_offset: Option<i32>,
    },
}

/// Reads `wso2carbon.pid` and checks `/proc/<pid>/cmdline`.
pub fn pid_file_state(home: &Path) -> PidFile {
    let Ok(bytes) = std::fs::read(home.join(PID_FILE)) else {
        return PidFile::Absent;
    };
    let pid = parse_pid(&bytes);
    let Some(pid) = pid else {
        return PidFile::Stale { pid: None };
    };
    match carbon_process(pid, home) {
        Some(port_offset) => PidFile::Running { pid, port_offset },
        None => PidFile::Stale { pid: Some(pid) },
    }
}

/// `12345\n\0\0…` → 12345.
pub(crate) fn parse_pid(bytes: &[u8]) -> Option<u32> {
    let text = String::from_utf8_lossy(bytes);
    text.trim_matches(|c: char| c == '\0' || c.is_whitespace())
        .parse()
        .ok()
}

/// `Some(-DportOffset)` when `pid` is a Carbon server whose `carbon.home` is `home`.
fn carbon_process(pid: u32, home: &Path) -> Option<Option<i32>> {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = cmdline
        .split(|&b| b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    if !args.iter().any(|a| a == BOOTSTRAP_CLASS) {
        return None;
    }
    let home = canonical(home);
    let carbon_home = args
        .iter()
        .find_map(|a| a.strip_prefix("-Dcarbon.home="))
        .map(|p| canonical(Path::new(p)))?;
    if carbon_home != home {
        return None;
    }
    let offset = args
        .iter()
        .find_map(|a| a.strip_prefix("-DportOffset="))
        .and_then(|v| v.parse().ok());
    Some(offset)
}

fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

/// The ports among `ports` on which something accepts TCP connections on loopback.
pub fn listening_ports(ports: &[u16]) -> Vec<u16> {
    ports
        .iter()
        .copied()
        .filter(|&port| {
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            TcpStream::connect_timeout(&addr, PROBE_TIMEOUT).is_ok()
        })
        .collect()
}

/// Carbon's management ports for an offset: HTTPS 9443 and HTTP 9763 plus the offset.
pub fn carbon_ports(offset: i32) -> Vec<u16> {
    [9443, 9763]
        .into_iter()
        .filter_map(|base: i32| u16::try_from(base + offset).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_file_is_parsed_through_nul_padding() {
        let mut bytes = b"4242\n".to_vec();
        bytes.resize(100, 0);
        assert_eq!(parse_pid(&bytes), Some(4242));
        assert_eq!(parse_pid(b"\0\0"), None);
        assert_eq!(parse_pid(b"not a pid"), None);
    }

    #[test]
    fn ports_follow_the_offset() {
        assert_eq!(carbon_ports(0), vec![9443, 9763]);
        assert_eq!(carbon_ports(3), vec![9446, 9766]);
    }
}
