#!/usr/bin/python3
"""A folder that stalls like a network share: a FUSE mount of BACKING at MOUNT whose
file-system calls on names (lookups, creating, removing, renaming, listing, opening,
syncing, free space) sleep for the seconds written in CONTROL while that file exists.
Reads and writes of open files are not delayed: a muxer already writing goes on.
With WRITE_CONTROL given, each write to an open file sleeps for the seconds written
there while that file exists (a slow disk, a muxer writing slowly); without it, or
while it does not exist, writes are not delayed. With SYNC_CONTROL given, each sync of
a file sleeps for the seconds written there while that file exists (a disk many
writers sync at once).

    slowfs.py BACKING MOUNT CONTROL [WRITE_CONTROL [SYNC_CONTROL]]

Runs in the foreground until unmounted (`umount MOUNT`). Needs python3-fusepy and
/dev/fuse. Used by tests/slow_fs.rs and tests/finalize.rs.
"""

import errno
import os
import sys
import time

from fusepy import FUSE, FuseOSError, Operations


class SlowFolder(Operations):
    def __init__(self, backing, control, write_control=None, sync_control=None):
        self.backing = backing
        self.control = control
        self.write_control = write_control
        self.sync_control = sync_control

    def _stall(self, control=None):
        try:
            with open(control or self.control) as f:
                delay = float(f.read().strip() or 0)
        except (OSError, ValueError):
            return
        time.sleep(delay)

    def _path(self, path):
        return os.path.join(self.backing, path.lstrip("/"))

    def _call(self, f, *args):
        self._stall()
        try:
            return f(*args)
        except OSError as e:
            raise FuseOSError(e.errno or errno.EIO)

    # Names: delayed.
    def getattr(self, path, fh=None):
        st = self._call(os.lstat, self._path(path))
        keys = ("st_atime", "st_ctime", "st_gid", "st_mode", "st_mtime", "st_nlink",
                "st_size", "st_uid", "st_ino", "st_dev")
        return {k: getattr(st, k) for k in keys}

    def readdir(self, path, fh):
        return [".", ".."] + self._call(os.listdir, self._path(path))

    def readlink(self, path):
        return self._call(os.readlink, self._path(path))

    def access(self, path, mode):
        if not self._call(os.access, self._path(path), mode):
            raise FuseOSError(errno.EACCES)

    def mknod(self, path, mode, dev):
        return self._call(os.mknod, self._path(path), mode, dev)

    def mkdir(self, path, mode):
        return self._call(os.mkdir, self._path(path), mode)

    def rmdir(self, path):
        return self._call(os.rmdir, self._path(path))

    def unlink(self, path):
        return self._call(os.unlink, self._path(path))

    def symlink(self, name, target):
        return self._call(os.symlink, target, self._path(name))

    def link(self, target, name):
        return self._call(os.link, self._path(name), self._path(target))

    def rename(self, old, new):
        return self._call(os.rename, self._path(old), self._path(new))

    def chmod(self, path, mode):
        return self._call(os.chmod, self._path(path), mode)

    def chown(self, path, uid, gid):
        return self._call(os.chown, self._path(path), uid, gid)

    def truncate(self, path, length, fh=None):
        return self._call(os.truncate, self._path(path), length)

    def utimens(self, path, times=None):
        return self._call(os.utime, self._path(path), times)

    def statfs(self, path):
        st = self._call(os.statvfs, self._path(path))
        keys = ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree",
                "f_files", "f_flag", "f_frsize", "f_namemax")
        return {k: getattr(st, k) for k in keys}

    def open(self, path, flags):
        return self._call(os.open, self._path(path), flags)

    def create(self, path, mode, fi=None):
        return self._call(os.open, self._path(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)

    def fsync(self, path, datasync, fh):
        if self.sync_control:
            self._stall(self.sync_control)
        return self._call(os.fsync, fh)

    def fsyncdir(self, path, datasync, fh):
        self._stall()
        return 0

    # Open files: not delayed. At their offset in one call: the kernel sends reads of
    # one file in parallel (read-ahead), each in a thread of its own, and a seek then a
    # read let one thread's seek move another's read.
    def read(self, path, length, offset, fh):
        return os.pread(fh, length, offset)

    def write(self, path, buf, offset, fh):
        if self.write_control:
            self._stall(self.write_control)
        return os.pwrite(fh, buf, offset)

    def flush(self, path, fh):
        return 0

    def release(self, path, fh):
        return os.close(fh)


if __name__ == "__main__":
    backing, mount, control = sys.argv[1:4]
    write_control = sys.argv[4] if len(sys.argv) > 4 else None
    sync_control = sys.argv[5] if len(sys.argv) > 5 else None
    FUSE(SlowFolder(backing, control, write_control, sync_control), mount, foreground=True,
         nothreads=False)
