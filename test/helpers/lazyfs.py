#!/usr/bin/python3
"""A FUSE file system that loses what was not synced when the power is cut (the technique of Jepsen's LazyFS).

Every file and directory lives in memory twice: the view processes see (the "page cache") and what a power cut
would leave (the "disk"). Writes, truncations, creations, renames and unlinks change only the view. Only:
  - fsync/fdatasync of a file copies that file's bytes (and size) to the disk, and
  - fsync of a directory copies that directory's entries (names -> inodes) to the disk,
as POSIX promises and no more: a new file whose directory was never synced is gone after a cut, however often
the file itself was synced.

Control, one command per line on stdin, one answer per line on stdout:
  crash DIR   the power cut: from now on every operation fails with EIO, and DIR receives what the disk holds
              ("crashed <json stats>")
  stats       counters of syncs so far ("stats <json>")
Startup prints "mounted" once the mount answers. Closing stdin unmounts. Options:
  --from DIR   start with DIR's contents, both in the view and on the disk (a machine that booted again)
  --sync-delay-ms N   each fsync takes N ms more (a slow disk, so acknowledgements that do not wait show)

Needs python3-fusepy (Debian) and /dev/fuse; runs as root or with fusermount.
"""

import argparse
import errno
import json
import os
import stat
import subprocess
import sys
import threading
import time
import warnings

warnings.filterwarnings('ignore', category=DeprecationWarning)
from fusepy import FUSE, FuseOSError, Operations  # noqa: E402


class Node:
    __slots__ = ('ino', 'is_dir', 'mode', 'data', 'disk_data', 'children', 'disk_children', 'mtime')

    def __init__(self, ino, is_dir, mode):
        self.ino = ino
        self.is_dir = is_dir
        self.mode = mode
        self.mtime = time.time()
        self.data = bytearray()  # the view (files)
        self.disk_data = None  # bytes on disk after the last file sync; None: never synced (empty on disk)
        self.children = {}  # the view (directories): name -> Node
        self.disk_children = {}  # entries on disk after the last directory sync


class LazyFS(Operations):
    use_ns = True

    def __init__(self, sync_delay_ms):
        self.mutex = threading.RLock()
        self.next_ino = 1
        self.root = self._new(True, 0o755)
        self.handles = {}
        self.next_fh = 1
        self.crashed = False
        self.sync_delay = sync_delay_ms / 1000
        self.counts = {'fileSyncs': 0, 'dirSyncs': 0, 'writes': 0}
        self.synced_paths = {}

    def _new(self, is_dir, mode):
        node = Node(self.next_ino, is_dir, mode)
        self.next_ino += 1
        return node

    # Paths ---------------------------------------------------------------------------------------------------
    def _lookup(self, path):
        node = self.root
        for part in [p for p in path.split('/') if p]:
            if not node.is_dir or part not in node.children:
                raise FuseOSError(errno.ENOENT)
            node = node.children[part]
        return node

    def _parent(self, path):
        head, name = os.path.split(path.rstrip('/'))
        parent = self._lookup(head or '/')
        if not parent.is_dir:
            raise FuseOSError(errno.ENOTDIR)
        return parent, name

    def _node(self, path, fh):
        if fh:
            node = self.handles.get(fh)
            if node is not None:
                return node
        if path is None:
            raise FuseOSError(errno.EBADF)
        return self._lookup(path)

    def _check(self):
        if self.crashed:
            raise FuseOSError(errno.EIO)

    # Control -------------------------------------------------------------------------------------------------
    def load(self, src):
        """Fills view and disk from a real directory."""
        def fill(node, real):
            for name in sorted(os.listdir(real)):
                p = os.path.join(real, name)
                if os.path.isdir(p):
                    child = self._new(True, 0o755)
                    fill(child, p)
                else:
                    child = self._new(False, 0o644)
                    with open(p, 'rb') as f:
                        child.data = bytearray(f.read())
                    child.disk_data = bytes(child.data)
                node.children[name] = child
                node.disk_children[name] = child
        fill(self.root, src)

    def crash(self, out):
        with self.mutex:
            self.crashed = True
            os.makedirs(out, exist_ok=True)

            def dump(node, real):
                for name, child in node.disk_children.items():
                    p = os.path.join(real, name)
                    if child.is_dir:
                        os.makedirs(p, exist_ok=True)
                        dump(child, p)
                    else:
                        with open(p, 'wb') as f:
                            f.write(child.disk_data or b'')
            dump(self.root, out)
            return dict(self.counts, syncedPaths=self.synced_paths)

    # Metadata ------------------------------------------------------------------------------------------------
    def getattr(self, path, fh=None):
        with self.mutex:
            self._check()
            node = self._node(path, fh)
            now = node.mtime
            if node.is_dir:
                return dict(st_mode=stat.S_IFDIR | node.mode, st_nlink=2, st_size=4096,
                            st_uid=os.getuid(), st_gid=os.getgid(),
                            st_atime=int(now * 1e9), st_mtime=int(now * 1e9), st_ctime=int(now * 1e9))
            return dict(st_mode=stat.S_IFREG | node.mode, st_nlink=1, st_size=len(node.data),
                        st_uid=os.getuid(), st_gid=os.getgid(), st_blocks=(len(node.data) + 511) // 512,
                        st_atime=int(now * 1e9), st_mtime=int(now * 1e9), st_ctime=int(now * 1e9))

    def access(self, path, amode):
        with self.mutex:
            self._check()
            self._lookup(path)
            return 0

    def chmod(self, path, mode):
        with self.mutex:
            self._check()
            self._lookup(path).mode = mode & 0o7777
            return 0

    def chown(self, path, uid, gid):
        return 0

    def utimens(self, path, times=None):
        with self.mutex:
            self._check()
            self._lookup(path).mtime = time.time()
            return 0

    def statfs(self, path):
        return dict(f_bsize=4096, f_frsize=4096, f_blocks=1 << 24, f_bfree=1 << 23, f_bavail=1 << 23,
                    f_files=1 << 20, f_ffree=1 << 19, f_namemax=255)

    # Directories ---------------------------------------------------------------------------------------------
    def mkdir(self, path, mode):
        with self.mutex:
            self._check()
            parent, name = self._parent(path)
            if name in parent.children:
                raise FuseOSError(errno.EEXIST)
            parent.children[name] = self._new(True, mode & 0o7777)
            return 0

    def rmdir(self, path):
        with self.mutex:
            self._check()
            parent, name = self._parent(path)
            node = parent.children.get(name)
            if node is None:
                raise FuseOSError(errno.ENOENT)
            if not node.is_dir:
                raise FuseOSError(errno.ENOTDIR)
            if node.children:
                raise FuseOSError(errno.ENOTEMPTY)
            del parent.children[name]
            return 0

    def opendir(self, path):
        with self.mutex:
            self._check()
            node = self._lookup(path)
            fh = self.next_fh
            self.next_fh += 1
            self.handles[fh] = node
            return fh

    def readdir(self, path, fh):
        with self.mutex:
            self._check()
            node = self._node(path, fh)
            return ['.', '..'] + list(node.children.keys())

    def releasedir(self, path, fh):
        with self.mutex:
            self.handles.pop(fh, None)
            return 0

    def fsyncdir(self, path, datasync, fh):
        with self.mutex:
            self._check()
            node = self._node(path, fh)
            entries = dict(node.children)
        self._wait()
        with self.mutex:
            self._check()
            node.disk_children = entries
            self.counts['dirSyncs'] += 1
            key = path or '?'
            self.synced_paths[key] = self.synced_paths.get(key, 0) + 1
        return 0

    # Files ---------------------------------------------------------------------------------------------------
    def create(self, path, mode, fi=None):
        with self.mutex:
            self._check()
            parent, name = self._parent(path)
            node = parent.children.get(name)
            if node is None:
                node = self._new(False, mode & 0o7777)
                parent.children[name] = node
            fh = self.next_fh
            self.next_fh += 1
            self.handles[fh] = node
            return fh

    def open(self, path, flags):
        with self.mutex:
            self._check()
            node = self._lookup(path)
            if flags & os.O_TRUNC:
                node.data = bytearray()
            fh = self.next_fh
            self.next_fh += 1
            self.handles[fh] = node
            return fh

    def read(self, path, size, offset, fh):
        with self.mutex:
            self._check()
            node = self._node(path, fh)
            return bytes(node.data[offset:offset + size])

    def write(self, path, data, offset, fh):
        with self.mutex:
            self._check()
            node = self._node(path, fh)
            end = offset + len(data)
            if offset > len(node.data):
                node.data.extend(b'\0' * (offset - len(node.data)))
            node.data[offset:end] = data
            node.mtime = time.time()
            self.counts['writes'] += 1
            return len(data)

    def truncate(self, path, length, fh=None):
        with self.mutex:
            self._check()
            node = self._node(path, fh)
            if length < len(node.data):
                del node.data[length:]
            else:
                node.data.extend(b'\0' * (length - len(node.data)))
            return 0

    def fsync(self, path, datasync, fh):
        # A slow disk: the bytes reach it only at the end of the call, and a cut during the wait loses them.
        with self.mutex:
            self._check()
            node = self._node(path, fh)
            data = bytes(node.data)
        self._wait()
        with self.mutex:
            self._check()
            node.disk_data = data
            self.counts['fileSyncs'] += 1
            key = path or '?'
            self.synced_paths[key] = self.synced_paths.get(key, 0) + 1
        return 0

    def _wait(self):
        if self.sync_delay:
            time.sleep(self.sync_delay)

    def flush(self, path, fh):
        return 0

    def release(self, path, fh):
        with self.mutex:
            self.handles.pop(fh, None)
            return 0

    def unlink(self, path):
        with self.mutex:
            self._check()
            parent, name = self._parent(path)
            if name not in parent.children:
                raise FuseOSError(errno.ENOENT)
            del parent.children[name]
            return 0

    def rename(self, old, new):
        with self.mutex:
            self._check()
            src_parent, src_name = self._parent(old)
            dst_parent, dst_name = self._parent(new)
            node = src_parent.children.get(src_name)
            if node is None:
                raise FuseOSError(errno.ENOENT)
            del src_parent.children[src_name]
            dst_parent.children[dst_name] = node
            return 0

    def link(self, target, source):
        raise FuseOSError(errno.EPERM)

    def symlink(self, target, source):
        raise FuseOSError(errno.EPERM)


def control(fs, mountpoint):
    for line in sys.stdin:
        parts = line.split(maxsplit=1)
        if not parts:
            continue
        if parts[0] == 'crash' and len(parts) == 2:
            stats = fs.crash(parts[1].strip())
            print('crashed ' + json.dumps(stats), flush=True)
        elif parts[0] == 'stats':
            with fs.mutex:
                print('stats ' + json.dumps(dict(fs.counts, syncedPaths=fs.synced_paths)), flush=True)
        else:
            print('error unknown command', flush=True)
    # stdin closed: whoever drives us is done (or dead); leave no mount behind.
    subprocess.run(['fusermount3', '-u', '-z', mountpoint], check=False)


class Mounted(LazyFS):
    def __init__(self, sync_delay_ms, mountpoint):
        super().__init__(sync_delay_ms)
        self.mountpoint = mountpoint

    def init(self, path):
        print('mounted', flush=True)
        threading.Thread(target=control, args=(self, self.mountpoint), daemon=True).start()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('mountpoint')
    parser.add_argument('--from', dest='source')
    parser.add_argument('--sync-delay-ms', type=float, default=0)
    args = parser.parse_args()
    fs = Mounted(args.sync_delay_ms, args.mountpoint)
    if args.source:
        fs.load(args.source)
    # Single-threaded: operations are serialized (the control thread shares the same lock). No kernel write-back
    # cache: every write(2) reaches us before it returns, so "written" and "in the view" are the same thing.
    FUSE(fs, args.mountpoint, foreground=True, nothreads=True, big_writes=True, hard_remove=True,
         default_permissions=True, fsname='lazyfs')


if __name__ == '__main__':
    main()
