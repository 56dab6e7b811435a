// SPDX-License-Identifier: Apache-2.0
// A stand-in for NFS-Ganesha's libganesha_nfsd.so for the BPF tests: its NLM4 dispatch table laid
// out as src/MainNFSD/nfs_worker_thread.c lays out nfs_function_desc_t, handlers that take their
// decoded XDR arguments (nlm4_lockargs, nlm4_unlockargs) first and lock through an OFD lock as
// Ganesha's VFS FSAL does, and none of them exported: lockferry must find them through the table.
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>

struct netobj {
  unsigned int n_len;
  char* n_bytes;
};

struct nlm4_lock {
  char* caller_name;
  struct netobj fh;
  struct netobj oh;
  int svid; /* here: the descriptor to lock */
  unsigned long long l_offset;
  unsigned long long l_len;
};

struct nlm4_lockargs {
  struct netobj cookie;
  int block;
  int exclusive;
  struct nlm4_lock alock;
  int reclaim;
  int state;
};

struct nlm4_unlockargs {
  struct netobj cookie;
  struct nlm4_lock alock;
};

struct nfs_function_desc {
  int (*service_function)(void* args, void* req, void* res);
  void (*free_function)(void* res);
  int (*xdr_decode_func)(void* xdrs, void* obj);
  int (*xdr_encode_func)(void* xdrs, void* obj);
  const char* funcname;
  unsigned int dispatch_behaviour;
};

static int ofd_lock(const struct nlm4_lock* l, short type) {
  struct flock fl;

  memset(&fl, 0, sizeof(fl));
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = (off_t)l->l_offset;
  fl.l_len = (off_t)l->l_len;
  return fcntl(l->svid, F_OFD_SETLK, &fl);
}

__attribute__((noinline)) static int nlm4_Lock(void* args, void* req, void* res) {
  const struct nlm4_lockargs* a = args;

  (void)req;
  (void)res;
  return ofd_lock(&a->alock, a->exclusive ? F_WRLCK : F_RDLCK);
}

__attribute__((noinline)) static int nlm4_Unlock(void* args, void* req, void* res) {
  const struct nlm4_unlockargs* a = args;

  (void)req;
  (void)res;
  return ofd_lock(&a->alock, F_UNLCK);
}

static void nlm_free(void* res) { (void)res; }

static int xdr_any(void* xdrs, void* obj) {
  (void)xdrs;
  (void)obj;
  return 1;
}

const struct nfs_function_desc fake_nlm4_func_desc[] = {
    {nlm4_Lock, nlm_free, xdr_any, xdr_any, "NLM4_LOCK", 1},
    {nlm4_Unlock, nlm_free, xdr_any, xdr_any, "NLM4_UNLOCK", 1},
};

/* Dispatches like Ganesha's worker thread: by the table. */
int fake_ganesha_dispatch(const char* funcname, void* args) {
  unsigned int i;

  for (i = 0; i < sizeof(fake_nlm4_func_desc) / sizeof(fake_nlm4_func_desc[0]); i++)
    if (strcmp(fake_nlm4_func_desc[i].funcname, funcname) == 0)
      return fake_nlm4_func_desc[i].service_function(args, 0, 0);
  return -1;
}
