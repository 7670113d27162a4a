/*
 * server_main.c - raftkv-server(8): a cluster member serving the KV store
 * without mounting it: member_main() (raft/member/member_main.c: options,
 * member_start, signals, member_stop) running kvapp (kv/kvapp.c).
 */
#include "kv/kvapp.h"

int main(int argc, char **argv)
{
	return member_main(argc, argv, &kvapp, "raftkv-server");
}
