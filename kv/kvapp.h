/*
 * kvapp.h - the KV state machine (kv.h) as a member's application: the
 * callbacks the member runtime calls (struct rsm_app in
 * raft/member/rsm.h, struct endpoint_app in raft/member/endpoint.h).
 * member_app_arg() of a member running kvapp is its struct kv *.
 *
 *   apply     kv_apply(), the result encoded (cmd.h) as the reply
 *   snapshot  kv_snapshot();  restore  kv_restore()
 *   prepare   stamps the proposer's clock into a command's time_ns
 *   query     GET and LIST (query.h) from the local state;
 *             query_quick  a GET of a small value, on the member's loop
 */
#ifndef RAFTKV_KV_KVAPP_H
#define RAFTKV_KV_KVAPP_H

#include "raft/member/member.h"

extern const struct member_app kvapp;

#endif
