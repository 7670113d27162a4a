/*
 * keys.h - CURVE key pairs and the files that hold them.
 *
 * A secret key file holds one line: the 40-character Z85 secret key.  Its
 * public key is derived from it (zmq_curve_public), so one file is a whole
 * credential.  Secret files are created with mode 0600 and refused when
 * anyone but the owner may read them (a leaked member or admin key lets
 * its holder forge that member's messages or an operator's requests).
 *
 * Where the files of a cluster set up by `raftkv init DIR` live, so that
 * nobody has to type a path (raftkv.conf(5), FILES):
 *
 *   DIR/cluster.conf       the cluster file (public keys only)
 *   DIR/member<ID>.key     member ID's secret key (raftkv-server's default
 *                          --curve-secret: next to the cluster file)
 *   DIR/client.key         the cluster's client credential
 *   DIR/admin.key          the administrator's credential
 *
 * keys_load_credential() finds a client's credential the same way: an
 * explicit path, else $RAFTKV_CREDENTIAL, else client.key (or admin.key
 * when @admin is asked for, or client.key is missing) next to the cluster
 * file.
 *
 * Errors: 0 or -errno (-EINVAL: not a key; -EPERM: readable by others;
 * -EEXIST: a secret file that would be overwritten), with one line naming
 * the file in @err.
 */
#ifndef RAFTKV_KEYS_H
#define RAFTKV_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#include "raft/client/cluster.h"

#define KEYS_Z85_LEN CLUSTER_KEY_LEN /* 40 characters */

/* A fresh key pair, each KEYS_Z85_LEN characters and a NUL.  0 or
 * -ENOTSUP (libzmq without CURVE). */
int keys_generate(char pub[KEYS_Z85_LEN + 1], char sec[KEYS_Z85_LEN + 1]);

/* The public key of secret @sec.  0 or -EINVAL. */
int keys_public(const char *sec, char pub[KEYS_Z85_LEN + 1]);

/* Write @sec to a new file @path (mode 0600, never overwriting). */
int keys_write_secret(const char *path, const char *sec, char *err,
    size_t errlen);

/* Read the secret key in @path into @sec (checked: owner-only mode, one
 * well-formed Z85 key). */
int keys_read_secret(const char *path, char sec[KEYS_Z85_LEN + 1], char *err,
    size_t errlen);

/* Directory part of @path ("." when it has none) into @out. */
void keys_dir_of(const char *path, char *out, size_t cap);

/*
 * Give @c (loaded from @cluster_path) this process's client credential,
 * found as the file comment says (@explicit_path may be NULL).  Nothing to
 * do for a cluster without keys (returns 0).  The credential must be one
 * of the cluster file's "credential" lines, so a wrong file is reported
 * here and not as a refused handshake.  -ENOENT when none is found.
 */
int keys_load_credential(struct cluster *c, const char *cluster_path,
    const char *explicit_path, bool admin, char *err, size_t errlen);

/*
 * Set up a cluster in directory @dir (which must exist): generate a key
 * pair for every member of @c (ids and endpoints filled in, keys empty),
 * a client and an admin credential; write their secret files (mode 0600)
 * and @dir/cluster.conf listing every public key (mode 0644), as the file
 * comment lays out.  Fills the members' keys and the credential lines into
 * @c.  Never overwrites a file: -EEXIST naming it.
 */
int keys_init_cluster(const char *dir, struct cluster *c, char *err,
    size_t errlen);

#endif
