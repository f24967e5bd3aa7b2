// powercut: a FUSE 3 pass-through file system that keeps every write not yet made durable and, on a "cut",
// drops it all, as an SD card looks after the power came back (the idea of LazyFS, used by Jepsen).
//
//   powercut-fs mount BACKING_DIR MOUNTPOINT     foreground until unmounted (fusermount3 -u MOUNTPOINT)
//   powercut-fs cut [--torn SEED] MOUNTPOINT      returns once the unsynced writes are gone
//
// What is held back (strict POSIX, stricter than ext4):
// - File data: writes and truncations (O_TRUNC included) stay in this process, per file (by inode), until
//   fsync/fdatasync of that file writes them to the backing file and fsyncs it. Reads see them.
// - Directory entries: create, mkdir, unlink, rmdir, rename, link and symlink reach the backing directory at
//   once but are logged; fsync of a directory makes every logged entry up to its last one durable (a
//   journal commits in order). A cut undoes the rest, newest first: a rename without a directory fsync is
//   undone, a file created and fsynced in a directory never fsynced disappears.
// - "--torn SEED" keeps a random prefix (in write order) of the held data writes instead of none.
// A clean unmount writes everything (a clean shutdown syncs). Metadata (mode, owner, times) is not held.
// A cut first flushes the kernel's dirty pages of the mount (mmap writes) into the held writes, so they
// are dropped with the rest.
// The control socket is /tmp/powercut-<hash of the mountpoint's real path>.sock.
#define FUSE_USE_VERSION 31
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/un.h>
#include <unistd.h>

#define PAGE 4096

static int backing = -1;            /* the backing directory */
static char stash_dir[PATH_MAX];    /* hard links keeping what an uncommitted unlink/rename removed */
static unsigned long stash_seq = 0;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* --- held file data ------------------------------------------------------------------------------- */

struct page {
  off_t index;
  unsigned char data[PAGE];
};

struct held_file {
  ino_t ino;
  int fd;            /* our own O_RDWR descriptor of the backing file (survives renames) */
  off_t size;        /* the size readers see */
  off_t floor;       /* the smallest size since held: backing bytes from here on are stale, read as zero */
  struct page **pages; /* sorted by index */
  size_t count, capacity;
  struct held_file *next;
};

static struct held_file *held = NULL;

/* Every held write or truncation, in order: what a torn cut replays a prefix of. */
struct data_op {
  ino_t ino;
  int is_truncate;
  off_t offset; /* the new size, for a truncation */
  size_t length;
  unsigned char *bytes;
};
static struct data_op *ops = NULL;
static size_t op_count = 0, op_capacity = 0;

static const char *rel(const char *path) {
  while (*path == '/') path++;
  return *path == '\0' ? "." : path;
}

static struct held_file *find_held(ino_t ino) {
  for (struct held_file *file = held; file != NULL; file = file->next)
    if (file->ino == ino) return file;
  return NULL;
}

static struct held_file *hold(int from_fd) {
  struct stat st;
  if (fstat(from_fd, &st) != 0) return NULL;
  struct held_file *file = find_held(st.st_ino);
  if (file != NULL) return file;
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", from_fd);
  int fd = open(proc, O_RDWR | O_CLOEXEC); /* a fresh open: no O_APPEND, whatever the writer used */
  if (fd < 0) return NULL;
  file = calloc(1, sizeof *file);
  file->ino = st.st_ino;
  file->fd = fd;
  file->size = st.st_size;
  file->floor = st.st_size;
  file->next = held;
  held = file;
  return file;
}

/* Backing bytes as readers see them: zero at and past `floor` (a held truncation cut them). */
static void read_backing(struct held_file *file, unsigned char *buf, size_t length, off_t at) {
  ssize_t got = at < file->floor ? pread(file->fd, buf, length, at) : 0;
  if (got < 0) got = 0;
  off_t valid = file->floor - at;
  if (valid < 0) valid = 0;
  if ((off_t)got > valid) got = valid;
  memset(buf + got, 0, length - (size_t)got);
}

static size_t page_slot(struct held_file *file, off_t index, int *found) {
  size_t low = 0, high = file->count;
  while (low < high) {
    size_t mid = (low + high) / 2;
    if (file->pages[mid]->index < index) low = mid + 1;
    else high = mid;
  }
  *found = low < file->count && file->pages[low]->index == index;
  return low;
}

/* The page as readers see it, made held (loaded from the backing file) if it was not. */
static struct page *page_of(struct held_file *file, off_t index) {
  int found;
  size_t slot = page_slot(file, index, &found);
  if (found) return file->pages[slot];
  struct page *page = calloc(1, sizeof *page);
  page->index = index;
  read_backing(file, page->data, PAGE, index * PAGE);
  if (file->count == file->capacity) {
    file->capacity = file->capacity == 0 ? 16 : file->capacity * 2;
    file->pages = realloc(file->pages, file->capacity * sizeof *file->pages);
  }
  memmove(&file->pages[slot + 1], &file->pages[slot], (file->count - slot) * sizeof *file->pages);
  file->pages[slot] = page;
  file->count++;
  return page;
}

static void log_op(ino_t ino, int is_truncate, off_t offset, const void *bytes, size_t length) {
  if (op_count == op_capacity) {
    op_capacity = op_capacity == 0 ? 64 : op_capacity * 2;
    ops = realloc(ops, op_capacity * sizeof *ops);
  }
  struct data_op *op = &ops[op_count++];
  op->ino = ino;
  op->is_truncate = is_truncate;
  op->offset = offset;
  op->length = length;
  op->bytes = NULL;
  if (length > 0) {
    op->bytes = malloc(length);
    memcpy(op->bytes, bytes, length);
  }
}

static void held_write(struct held_file *file, const char *buf, size_t size, off_t offset) {
  for (size_t done = 0; done < size;) {
    off_t at = offset + (off_t)done;
    struct page *page = page_of(file, at / PAGE);
    size_t in_page = (size_t)(at % PAGE);
    size_t chunk = PAGE - in_page < size - done ? PAGE - in_page : size - done;
    memcpy(page->data + in_page, buf + done, chunk);
    done += chunk;
  }
  if (offset + (off_t)size > file->size) file->size = offset + (off_t)size;
}

static void held_truncate(struct held_file *file, off_t size) {
  if (size < file->size && size % PAGE != 0) {
    struct page *page = page_of(file, size / PAGE);
    memset(page->data + size % PAGE, 0, PAGE - (size_t)(size % PAGE));
  }
  /* Pages wholly beyond the new end are zero now: drop them (reads past the end see nothing). */
  size_t keep = 0;
  for (size_t i = 0; i < file->count; i++) {
    if (file->pages[i]->index * PAGE < size || (size % PAGE != 0 && file->pages[i]->index == size / PAGE))
      file->pages[keep++] = file->pages[i];
    else
      free(file->pages[i]);
  }
  file->count = keep;
  file->size = size;
  if (size < file->floor) file->floor = size;
}

static void drop_ops_of(ino_t ino) {
  size_t keep = 0;
  for (size_t i = 0; i < op_count; i++) {
    if (ops[i].ino == ino) free(ops[i].bytes);
    else ops[keep++] = ops[i];
  }
  op_count = keep;
}

static void forget_held(struct held_file *file) {
  for (struct held_file **link = &held; *link != NULL; link = &(*link)->next) {
    if (*link == file) {
      *link = file->next;
      break;
    }
  }
  for (size_t i = 0; i < file->count; i++) free(file->pages[i]);
  free(file->pages);
  close(file->fd);
  free(file);
}

/* Writes a file's held data to its backing file and fsyncs it: now it survives a cut. */
static int make_durable(struct held_file *file) {
  /* Cut the stale tail first, so a gap the held pages do not cover reads as zero once extended. */
  if (ftruncate(file->fd, file->floor) != 0) return -errno;
  for (size_t i = 0; i < file->count; i++) {
    off_t start = file->pages[i]->index * PAGE;
    if (start >= file->size) continue;
    size_t length = file->size - start < PAGE ? (size_t)(file->size - start) : PAGE;
    if (pwrite(file->fd, file->pages[i]->data, length, start) != (ssize_t)length) return -errno;
  }
  if (ftruncate(file->fd, file->size) != 0) return -errno;
  if (fsync(file->fd) != 0) return -errno;
  drop_ops_of(file->ino);
  forget_held(file);
  return 0;
}

/* --- held directory entries --------------------------------------------------------------------- */

enum entry_kind { CREATED, MADE_DIR, UNLINKED, REMOVED_DIR, RENAMED };

struct entry_op {
  enum entry_kind kind;
  char path[PATH_MAX];
  char to[PATH_MAX];      /* RENAMED: the new name */
  char stash[PATH_MAX];   /* UNLINKED, RENAMED over an existing name: what it removed, kept here */
  char parents[2][PATH_MAX];
  mode_t mode;            /* REMOVED_DIR */
};
static struct entry_op *entries = NULL;
static size_t entry_count = 0, entry_capacity = 0;

static void parent_of(const char *path, char *out) {
  const char *slash = strrchr(path, '/');
  if (slash == NULL) strcpy(out, ".");
  else {
    memcpy(out, path, (size_t)(slash - path));
    out[slash - path] = '\0';
  }
}

static struct entry_op *log_entry(enum entry_kind kind, const char *path) {
  if (entry_count == entry_capacity) {
    entry_capacity = entry_capacity == 0 ? 64 : entry_capacity * 2;
    entries = realloc(entries, entry_capacity * sizeof *entries);
  }
  struct entry_op *entry = &entries[entry_count++];
  memset(entry, 0, sizeof *entry);
  entry->kind = kind;
  snprintf(entry->path, sizeof entry->path, "%s", path);
  parent_of(path, entry->parents[0]);
  strcpy(entry->parents[1], entry->parents[0]);
  return entry;
}

/* Keeps what `path` names (a hard link in the stash), so an undo can put it back. */
static int stash(const char *path, char *out) {
  snprintf(out, PATH_MAX, "%s/%lu", stash_dir, ++stash_seq);
  return linkat(backing, path, AT_FDCWD, out, 0) == 0 ? 0 : -errno;
}

static void commit_entry(struct entry_op *entry) {
  if (entry->stash[0] != '\0') unlink(entry->stash);
}

/* fsync of a directory: every logged entry up to the last one in that directory is durable. */
static void commit_directory(const char *dir) {
  size_t last = 0;
  int any = 0;
  for (size_t i = 0; i < entry_count; i++) {
    if (strcmp(entries[i].parents[0], dir) == 0 || strcmp(entries[i].parents[1], dir) == 0) {
      last = i;
      any = 1;
    }
  }
  if (!any) return;
  for (size_t i = 0; i <= last; i++) commit_entry(&entries[i]);
  memmove(entries, &entries[last + 1], (entry_count - last - 1) * sizeof *entries);
  entry_count -= last + 1;
}

static void undo_entry(struct entry_op *entry) {
  switch (entry->kind) {
    case CREATED:
      unlinkat(backing, entry->path, 0);
      break;
    case MADE_DIR:
      unlinkat(backing, entry->path, AT_REMOVEDIR);
      break;
    case UNLINKED:
      linkat(AT_FDCWD, entry->stash, backing, entry->path, 0);
      unlink(entry->stash);
      break;
    case REMOVED_DIR:
      mkdirat(backing, entry->path, entry->mode);
      break;
    case RENAMED:
      renameat(backing, entry->to, backing, entry->path);
      if (entry->stash[0] != '\0') {
        linkat(AT_FDCWD, entry->stash, backing, entry->to, 0);
        unlink(entry->stash);
      }
      break;
  }
}

/* --- the cut ------------------------------------------------------------------------------------- */

static void cut(int torn, unsigned seed, size_t *kept_writes, size_t *dropped_writes, size_t *undone) {
  size_t keep = 0;
  if (torn && op_count > 0) {
    srand(seed);
    keep = (size_t)rand() % (op_count + 1);
    for (size_t i = 0; i < keep; i++) {
      struct held_file *file = find_held(ops[i].ino);
      if (file == NULL) continue;
      if (ops[i].is_truncate) (void)!ftruncate(file->fd, ops[i].offset);
      else (void)!pwrite(file->fd, ops[i].bytes, ops[i].length, ops[i].offset);
    }
  }
  *kept_writes = keep;
  *dropped_writes = op_count - keep;
  for (size_t i = 0; i < op_count; i++) free(ops[i].bytes);
  op_count = 0;
  while (held != NULL) forget_held(held);
  *undone = entry_count;
  while (entry_count > 0) undo_entry(&entries[--entry_count]);
  syncfs(backing);
}

/* --- FUSE operations ---------------------------------------------------------------------------- */

static void *pc_init(struct fuse_conn_info *conn, struct fuse_config *cfg) {
  (void)conn;
  cfg->use_ino = 1;
  /* Nothing cached in the kernel beyond an open: after a cut, what was dropped must not be seen. */
  cfg->entry_timeout = 0;
  cfg->attr_timeout = 0;
  cfg->negative_timeout = 0;
  cfg->kernel_cache = 0;
  return NULL;
}

static void pc_destroy(void *data) {
  (void)data;
  pthread_mutex_lock(&lock);
  while (held != NULL) make_durable(held);
  for (size_t i = 0; i < entry_count; i++) commit_entry(&entries[i]);
  entry_count = 0;
  syncfs(backing);
  pthread_mutex_unlock(&lock);
}

static int pc_getattr(const char *path, struct stat *st, struct fuse_file_info *fi) {
  int res = fi != NULL ? fstat((int)fi->fh, st) : fstatat(backing, rel(path), st, AT_SYMLINK_NOFOLLOW);
  if (res != 0) return -errno;
  pthread_mutex_lock(&lock);
  struct held_file *file = S_ISREG(st->st_mode) ? find_held(st->st_ino) : NULL;
  if (file != NULL) st->st_size = file->size;
  pthread_mutex_unlock(&lock);
  return 0;
}

static int pc_access(const char *path, int mask) {
  return faccessat(backing, rel(path), mask, 0) == 0 ? 0 : -errno;
}

static int pc_readlink(const char *path, char *buf, size_t size) {
  ssize_t n = readlinkat(backing, rel(path), buf, size - 1);
  if (n < 0) return -errno;
  buf[n] = '\0';
  return 0;
}

static int pc_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t offset, struct fuse_file_info *fi,
                      enum fuse_readdir_flags flags) {
  (void)offset, (void)fi, (void)flags;
  int fd = openat(backing, rel(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -errno;
  DIR *dir = fdopendir(fd);
  if (dir == NULL) {
    close(fd);
    return -errno;
  }
  struct dirent *entry;
  while ((entry = readdir(dir)) != NULL) {
    struct stat st = {.st_ino = entry->d_ino, .st_mode = (mode_t)DTTOIF(entry->d_type)};
    if (fill(buf, entry->d_name, &st, 0, 0)) break;
  }
  closedir(dir);
  return 0;
}

static int pc_mkdir(const char *path, mode_t mode) {
  pthread_mutex_lock(&lock);
  int res = mkdirat(backing, rel(path), mode) == 0 ? 0 : -errno;
  if (res == 0) log_entry(MADE_DIR, rel(path));
  pthread_mutex_unlock(&lock);
  return res;
}

static int pc_unlink(const char *path) {
  pthread_mutex_lock(&lock);
  char kept[PATH_MAX];
  int res = stash(rel(path), kept);
  if (res == 0) res = unlinkat(backing, rel(path), 0) == 0 ? 0 : -errno;
  if (res == 0) snprintf(log_entry(UNLINKED, rel(path))->stash, PATH_MAX, "%s", kept);
  pthread_mutex_unlock(&lock);
  return res;
}

static int pc_rmdir(const char *path) {
  pthread_mutex_lock(&lock);
  struct stat st;
  int res = fstatat(backing, rel(path), &st, 0) == 0 ? 0 : -errno;
  if (res == 0) res = unlinkat(backing, rel(path), AT_REMOVEDIR) == 0 ? 0 : -errno;
  if (res == 0) log_entry(REMOVED_DIR, rel(path))->mode = st.st_mode & 07777;
  pthread_mutex_unlock(&lock);
  return res;
}

static int pc_symlink(const char *target, const char *path) {
  pthread_mutex_lock(&lock);
  int res = symlinkat(target, backing, rel(path)) == 0 ? 0 : -errno;
  if (res == 0) log_entry(CREATED, rel(path));
  pthread_mutex_unlock(&lock);
  return res;
}

static int pc_link(const char *from, const char *to) {
  pthread_mutex_lock(&lock);
  int res = linkat(backing, rel(from), backing, rel(to), 0) == 0 ? 0 : -errno;
  if (res == 0) log_entry(CREATED, rel(to));
  pthread_mutex_unlock(&lock);
  return res;
}

static int pc_rename(const char *from, const char *to, unsigned int flags) {
  if (flags != 0) return -EINVAL; /* RENAME_EXCHANGE / NOREPLACE: not needed by what runs on it */
  pthread_mutex_lock(&lock);
  char kept[PATH_MAX] = "";
  struct stat st;
  int res = 0;
  if (fstatat(backing, rel(to), &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(st.st_mode)) res = stash(rel(to), kept);
  if (res == 0) res = renameat(backing, rel(from), backing, rel(to)) == 0 ? 0 : -errno;
  if (res == 0) {
    struct entry_op *entry = log_entry(RENAMED, rel(from));
    snprintf(entry->to, PATH_MAX, "%s", rel(to));
    snprintf(entry->stash, PATH_MAX, "%s", kept);
    parent_of(rel(to), entry->parents[1]);
  } else if (kept[0] != '\0') {
    unlink(kept);
  }
  pthread_mutex_unlock(&lock);
  return res;
}

static int pc_chmod(const char *path, mode_t mode, struct fuse_file_info *fi) {
  (void)fi;
  return fchmodat(backing, rel(path), mode, 0) == 0 ? 0 : -errno;
}

static int pc_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi) {
  (void)fi;
  return fchownat(backing, rel(path), uid, gid, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}

static int pc_utimens(const char *path, const struct timespec times[2], struct fuse_file_info *fi) {
  (void)fi;
  return utimensat(backing, rel(path), times, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : -errno;
}

static int truncate_held(int fd, off_t size) {
  pthread_mutex_lock(&lock);
  struct held_file *file = hold(fd);
  int res = file == NULL ? -EIO : 0;
  if (file != NULL) {
    held_truncate(file, size);
    log_op(file->ino, 1, size, NULL, 0);
  }
  pthread_mutex_unlock(&lock);
  return res;
}

static int pc_truncate(const char *path, off_t size, struct fuse_file_info *fi) {
  if (fi != NULL) return truncate_held((int)fi->fh, size);
  int fd = openat(backing, rel(path), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  int res = truncate_held(fd, size);
  close(fd);
  return res;
}

/* The backing file is opened without O_TRUNC (a truncation is held like a write) and without O_APPEND
   (the kernel gives the offset of every write). */
static int open_backing(const char *path, struct fuse_file_info *fi, int create, mode_t mode) {
  int flags = (fi->flags & ~(O_TRUNC | O_APPEND | O_CREAT | O_EXCL)) | O_CLOEXEC;
  if ((flags & O_ACCMODE) == O_WRONLY) flags = (flags & ~O_ACCMODE) | O_RDWR;
  if (create) flags |= O_CREAT | O_EXCL;
  int fd = openat(backing, rel(path), flags, mode);
  if (fd < 0) return -errno;
  fi->fh = (uint64_t)fd;
  if ((fi->flags & O_TRUNC) && !create) return truncate_held(fd, 0);
  return 0;
}

static int pc_open(const char *path, struct fuse_file_info *fi) {
  return open_backing(path, fi, 0, 0);
}

static int pc_create(const char *path, mode_t mode, struct fuse_file_info *fi) {
  pthread_mutex_lock(&lock);
  int res = open_backing(path, fi, 1, mode);
  if (res == 0) log_entry(CREATED, rel(path));
  pthread_mutex_unlock(&lock);
  return res;
}

static int pc_read(const char *path, char *buf, size_t size, off_t offset, struct fuse_file_info *fi) {
  (void)path;
  pthread_mutex_lock(&lock);
  struct stat st;
  struct held_file *file = fstat((int)fi->fh, &st) == 0 ? find_held(st.st_ino) : NULL;
  int res;
  if (file == NULL) {
    ssize_t n = pread((int)fi->fh, buf, size, offset);
    res = n < 0 ? -errno : (int)n;
  } else {
    size_t length = offset >= file->size ? 0 : (size_t)(file->size - offset) < size ? (size_t)(file->size - offset) : size;
    for (size_t done = 0; done < length;) {
      off_t at = offset + (off_t)done;
      size_t in_page = (size_t)(at % PAGE);
      size_t chunk = PAGE - in_page < length - done ? PAGE - in_page : length - done;
      int found;
      size_t slot = page_slot(file, at / PAGE, &found);
      if (found) memcpy(buf + done, file->pages[slot]->data + in_page, chunk);
      else read_backing(file, (unsigned char *)buf + done, chunk, at);
      done += chunk;
    }
    res = (int)length;
  }
  pthread_mutex_unlock(&lock);
  return res;
}

static int pc_write(const char *path, const char *buf, size_t size, off_t offset, struct fuse_file_info *fi) {
  (void)path;
  pthread_mutex_lock(&lock);
  struct held_file *file = hold((int)fi->fh);
  int res = file == NULL ? -EIO : (int)size;
  if (file != NULL) {
    held_write(file, buf, size, offset);
    log_op(file->ino, 0, offset, buf, size);
  }
  pthread_mutex_unlock(&lock);
  return res;
}

static int pc_statfs(const char *path, struct statvfs *st) {
  (void)path;
  return fstatvfs(backing, st) == 0 ? 0 : -errno;
}

static int pc_release(const char *path, struct fuse_file_info *fi) {
  (void)path;
  close((int)fi->fh); /* held data stays held: closing a file does not make it durable */
  return 0;
}

static int pc_fsync(const char *path, int datasync, struct fuse_file_info *fi) {
  (void)path, (void)datasync;
  pthread_mutex_lock(&lock);
  struct stat st;
  int res = fstat((int)fi->fh, &st) == 0 ? 0 : -errno;
  struct held_file *file = res == 0 ? find_held(st.st_ino) : NULL;
  if (file != NULL) res = make_durable(file);
  else if (res == 0) res = fsync((int)fi->fh) == 0 ? 0 : -errno;
  pthread_mutex_unlock(&lock);
  return res;
}

static int pc_opendir(const char *path, struct fuse_file_info *fi) {
  int fd = openat(backing, rel(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -errno;
  fi->fh = (uint64_t)fd;
  return 0;
}

static int pc_releasedir(const char *path, struct fuse_file_info *fi) {
  (void)path;
  close((int)fi->fh);
  return 0;
}

static int pc_fsyncdir(const char *path, int datasync, struct fuse_file_info *fi) {
  (void)datasync;
  pthread_mutex_lock(&lock);
  commit_directory(rel(path));
  int res = fsync((int)fi->fh) == 0 ? 0 : -errno;
  pthread_mutex_unlock(&lock);
  return res;
}

static const struct fuse_operations operations = {
    .init = pc_init,
    .destroy = pc_destroy,
    .getattr = pc_getattr,
    .access = pc_access,
    .readlink = pc_readlink,
    .readdir = pc_readdir,
    .mkdir = pc_mkdir,
    .symlink = pc_symlink,
    .unlink = pc_unlink,
    .rmdir = pc_rmdir,
    .rename = pc_rename,
    .link = pc_link,
    .chmod = pc_chmod,
    .chown = pc_chown,
    .truncate = pc_truncate,
    .utimens = pc_utimens,
    .open = pc_open,
    .create = pc_create,
    .read = pc_read,
    .write = pc_write,
    .statfs = pc_statfs,
    .release = pc_release,
    .fsync = pc_fsync,
    .opendir = pc_opendir,
    .releasedir = pc_releasedir,
    .fsyncdir = pc_fsyncdir,
};

/* --- the control socket ------------------------------------------------------------------------- */

static void socket_path(const char *mountpoint, char *out, size_t size) {
  char real[PATH_MAX];
  if (realpath(mountpoint, real) == NULL) snprintf(real, sizeof real, "%s", mountpoint);
  uint64_t hash = 1469598103934665603ULL; /* FNV-1a: a name per mountpoint, nothing more */
  for (const char *c = real; *c; c++) hash = (hash ^ (unsigned char)*c) * 1099511628211ULL;
  snprintf(out, size, "/tmp/powercut-%016llx.sock", (unsigned long long)hash);
}

static void *serve_control(void *arg) {
  int server = *(int *)arg;
  for (;;) {
    int client = accept(server, NULL, NULL);
    if (client < 0) continue;
    char request[128] = "";
    ssize_t n = read(client, request, sizeof request - 1);
    if (n > 0) request[n] = '\0';
    unsigned seed = 0;
    int torn = sscanf(request, "cut torn %u", &seed) == 1;
    char answer[128];
    if (torn || strncmp(request, "cut", 3) == 0) {
      size_t kept, dropped, undone;
      pthread_mutex_lock(&lock);
      cut(torn, seed, &kept, &dropped, &undone);
      pthread_mutex_unlock(&lock);
      snprintf(answer, sizeof answer, "ok kept %zu dropped %zu undone %zu\n", kept, dropped, undone);
    } else {
      snprintf(answer, sizeof answer, "error: unknown request\n");
    }
    (void)!write(client, answer, strlen(answer));
    close(client);
  }
  return NULL;
}

static int usage(void) {
  fprintf(stderr, "usage: powercut-fs mount BACKING_DIR MOUNTPOINT\n       powercut-fs cut [--torn SEED] MOUNTPOINT\n");
  return 2;
}

static int run_cut(int argc, char **argv) {
  int torn = argc == 5 && strcmp(argv[2], "--torn") == 0;
  if (argc != 3 && !torn) return usage();
  char path[PATH_MAX];
  socket_path(argv[argc - 1], path, sizeof path);
  /* Pages a program dirtied through mmap (SQLite's -shm) sit in the kernel's page cache, not here: flush
     them into the held writes first, so the cut drops them too (as the power does); otherwise they would
     reach the file after the cut, over what the next program wrote. */
  int mounted = open(argv[argc - 1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (mounted >= 0) {
    syncfs(mounted);
    close(mounted);
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un address = {.sun_family = AF_UNIX};
  snprintf(address.sun_path, sizeof address.sun_path, "%s", path);
  if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
    fprintf(stderr, "powercut: no powercut mount at %s (%s: %s)\n", argv[argc - 1], path, strerror(errno));
    return 1;
  }
  char request[64];
  if (torn) snprintf(request, sizeof request, "cut torn %u\n", (unsigned)strtoul(argv[3], NULL, 10));
  else snprintf(request, sizeof request, "cut\n");
  (void)!write(fd, request, strlen(request));
  char answer[128] = "";
  ssize_t n = read(fd, answer, sizeof answer - 1);
  if (n > 0) answer[n] = '\0';
  fputs(answer, stdout);
  return strncmp(answer, "ok", 2) == 0 ? 0 : 1;
}

static int run_mount(int argc, char **argv) {
  if (argc != 4) return usage();
  backing = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (backing < 0) {
    fprintf(stderr, "powercut: %s: %s\n", argv[2], strerror(errno));
    return 1;
  }
  char real[PATH_MAX];
  if (realpath(argv[2], real) == NULL) return 1;
  snprintf(stash_dir, sizeof stash_dir, "%s.powercut-stash", real);
  mkdir(stash_dir, 0700);
  char path[PATH_MAX];
  socket_path(argv[3], path, sizeof path);
  unlink(path);
  int server = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un address = {.sun_family = AF_UNIX};
  snprintf(address.sun_path, sizeof address.sun_path, "%s", path);
  if (bind(server, (struct sockaddr *)&address, sizeof address) != 0 || listen(server, 4) != 0) {
    fprintf(stderr, "powercut: control socket %s: %s\n", path, strerror(errno));
    return 1;
  }
  pthread_t control;
  pthread_create(&control, NULL, serve_control, &server);
  pthread_detach(control);
  /* Foreground, single-threaded; others (the agent under test runs as any user) may use it. */
  char *fuse_argv[] = {argv[0], "-f", "-s", "-o", "allow_other,default_permissions,fsname=powercut", argv[3], NULL};
  int status = fuse_main(6, fuse_argv, &operations, NULL);
  unlink(path);
  return status;
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "mount") == 0) return run_mount(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "cut") == 0) return run_cut(argc, argv);
  return usage();
}
