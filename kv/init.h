/*
 * init.h - `raftkv init`: set up a new cluster, authenticated by default.
 *
 * Writes the cluster file, every member's CURVE key pair, a client and an
 * admin credential into one directory (keys_init_cluster(), raft/client/
 * keys.h, documents the layout), so that raftkv-server and raftkv find
 * their keys next to the cluster file with nothing more to type.
 */
#ifndef RAFTKV_KV_INIT_H
#define RAFTKV_KV_INIT_H

/* Run `raftkv init` with its own arguments (@argv[0] is "init").  Returns
 * the process exit status: 0, 1 (could not write), 64 (usage). */
int init_main(int argc, char **argv);

#endif
