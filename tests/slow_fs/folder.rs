//! The FUSE folder of `slowfs.py`, mounted for a test: its calls on names stall on
//! demand, and so, on demand, do writes to its open files and syncs of them.
#![allow(dead_code)] // each test uses part of it

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::{tmp_dir, wait_or_kill, wait_until};

/// A FUSE folder that stalls on demand: files written there land in `backing`.
pub struct SlowFolder {
    pub mount: PathBuf,
    pub backing: PathBuf,
    control: PathBuf,
    write_control: PathBuf,
    sync_control: PathBuf,
    child: Child,
}

fn unmount(mount: &Path) -> bool {
    Command::new("umount")
        .arg(mount)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn mounted(mount: &Path) -> bool {
    std::fs::read_to_string("/proc/mounts")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(1) == mount.to_str())
}

impl SlowFolder {
    pub fn mount(name: &str) -> SlowFolder {
        let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
        let mount = root.join("mount");
        // A mount left by a run that was killed.
        if mounted(&mount) {
            let _ = Command::new("umount").arg("-l").arg(&mount).status();
        }
        let root = tmp_dir(name);
        let (backing, control) = (root.join("backing"), root.join("stall"));
        let write_control = root.join("slow-writes");
        let sync_control = root.join("slow-syncs");
        std::fs::create_dir_all(&backing).unwrap();
        std::fs::create_dir_all(&mount).unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/slow_fs/slowfs.py");
        let log = std::fs::File::create(root.join("slowfs.log")).unwrap();
        let child = Command::new("/usr/bin/python3")
            .arg(script)
            .args([&backing, &mount, &control, &write_control, &sync_control])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("/usr/bin/python3 runs");
        let mut folder = SlowFolder {
            mount,
            backing,
            control,
            write_control,
            sync_control,
            child,
        };
        let up = wait_until(Duration::from_secs(10), || {
            mounted(&folder.mount) || folder.child.try_wait().unwrap().is_some()
        });
        if !up || !mounted(&folder.mount) {
            let output = std::fs::read_to_string(root.join("slowfs.log")).unwrap_or_default();
            panic!(
                "cannot mount the slow folder at {} (needs root, /dev/fuse and python3-fusepy: \
                 run scripts/setup.sh): {output}",
                folder.mount.display()
            );
        }
        folder
    }

    /// From now on each call on a name in the folder takes `seconds`.
    pub fn stall(&self, seconds: &str) {
        std::fs::write(&self.control, seconds).unwrap();
    }

    /// From now on each write to an open file in the folder takes `seconds`.
    pub fn slow_writes(&self, seconds: &str) {
        std::fs::write(&self.write_control, seconds).unwrap();
    }

    /// From now on each sync of a file in the folder takes `seconds`.
    pub fn slow_syncs(&self, seconds: &str) {
        std::fs::write(&self.sync_control, seconds).unwrap();
    }

    /// Calls, writes and syncs take their usual time again.
    pub fn resume(&self) {
        let _ = std::fs::remove_file(&self.control);
        let _ = std::fs::remove_file(&self.write_control);
        let _ = std::fs::remove_file(&self.sync_control);
    }
}

impl Drop for SlowFolder {
    fn drop(&mut self) {
        self.resume();
        if !unmount(&self.mount) {
            let _ = Command::new("umount").arg("-l").arg(&self.mount).status();
        }
        if wait_or_kill(&mut self.child, Duration::from_secs(5)).is_none() {
            eprintln!("slowfs.py did not end after its unmount: killed");
        }
    }
}
