/*
 * fuzz_frame.c - libFuzzer harness for the transport's frame decoder
 * (raft/net/frame.c, and through it the message codec, raft/msg.c).
 *
 * frame_decode() is the first thing to touch bytes from the network, so it
 * must refuse anything malformed or foreign without crashing, reading out
 * of bounds or leaking.  What it accepts must be exactly what a member
 * would have sent: the cluster is ours, the sender a member that is not
 * us, the body's from and to agree with the header, and re-encoding the
 * decoded message with the header's cluster and sender gives back the input
 * bytes (abort otherwise, so the fuzzer reports it).
 *
 * The filter is fixed: cluster FUZZ_CLUSTER, we are member 2 of {1, 2, 3};
 * the seed corpus (tests/fuzz/corpus/frame) holds one valid frame of each
 * message type from member 1 or 3 to member 2.
 *
 * Build and run (see `make fuzz-frame`; `make check-long` runs it briefly):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. raft/net/frame.c \
 *       raft/msg.c raft/err.c tests/fuzz/fuzz_frame.c -o fuzz_frame
 *   ./fuzz_frame -max_total_time=60 tests/fuzz/corpus/frame
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "raft/net/frame.h"

#define FUZZ_CLUSTER 0x5241465420465a5aull

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const raft_id members[] = { 1, 2, 3 };
static const struct frame_filter filter = {
	.cluster_id = FUZZ_CLUSTER,
	.self = 2,
	.n_members = 3,
	.members = members,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct frame_header h;
	struct raft_msg m;
	uint8_t *out;
	size_t n;

	if (frame_decode(data, size, &filter, &h, &m) != 0)
		return 0;
	if (h.cluster_id != FUZZ_CLUSTER || h.version != FRAME_VERSION ||
	    (h.sender != 1 && h.sender != 3) || m.from != h.sender || m.to != 2)
		abort();
	n = frame_encoded_size(&m);
	if (n != size)
		abort();
	out = malloc(n);
	if (out == NULL)
		abort();
	if (frame_encode(h.cluster_id, h.sender, &m, out, n) != (long)n ||
	    memcmp(out, data, n) != 0)
		abort();
	free(out);
	msg_release(&m);
	return 0;
}
