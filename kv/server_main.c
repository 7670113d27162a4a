/*
 * server_main.c - raftkv-server(8): a cluster member serving the KV store
 * without mounting it.  Everything is in raft/member/member.c and kv/kvapp.c.
 */
#include "kv/kvapp.h"

int main(int argc, char **argv)
{
	return member_main(argc, argv, &kvapp, "raftkv-server");
}
