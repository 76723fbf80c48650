//! The first start of a data directory creates the admin user.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::util::BIN;

#[test]
fn a_new_data_dir_gets_a_random_admin_password_shown_once_and_kept_private() {
    let data = tempfile::tempdir().expect("tempdir");
    let start = || {
        Command::new(BIN)
            .args(["serve", "--http", "127.0.0.1:0", "--data-dir"])
            .arg(data.path())
            .env_remove("SYNCPLANE_ADMIN_PASSWORD")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn")
    };
    let first_lines = |child: &mut std::process::Child| {
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = Vec::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let done = line.starts_with("syncplane listening on");
            lines.push(line);
            if done {
                break;
            }
        }
        lines
    };

    let mut child = start();
    let lines = first_lines(&mut child);
    let _ = child.kill();
    let _ = child.wait();
    let shown = lines
        .iter()
        .find_map(|l| l.strip_prefix("created user admin@opencord.org with password "))
        .unwrap_or_else(|| panic!("no password shown: {lines:?}"))
        .to_owned();
    assert!(shown.len() >= 16, "weak password {shown:?}");
    let file = data.path().join("admin-password");
    assert_eq!(
        std::fs::read_to_string(&file)
            .expect("password file")
            .trim(),
        shown
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "password file mode {mode:o}");
    }

    // The second start shows nothing: the password was shown once.
    let mut child = start();
    let lines = first_lines(&mut child);
    let _ = child.kill();
    let _ = child.wait();
    assert!(lines.iter().all(|l| !l.contains("password")), "{lines:?}");
}
