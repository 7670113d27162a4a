/*
 * fsapp.h - the filesystem's hook on the embedded member's application:
 * every committed command is applied to the KV state machine with the
 * inode table locked, and what it changed is then followed in the table
 * (renames and deletions move or kill inodes) and queued for the notifier.
 * An installed snapshot re-derives every known inode's key.
 */
#ifndef RAFTKV_FS_FSAPP_H
#define RAFTKV_FS_FSAPP_H

#include "fs/fs.h"
#include "kv/kv.h"
#include "raft/member/rsm.h"

/* An fsm_hook_fn (fsmember.h) for @arg = struct fs *: wraps @rapp. */
void fsapp_hook(void *arg, struct rsm_app *rapp, struct kv *kv);

#endif
