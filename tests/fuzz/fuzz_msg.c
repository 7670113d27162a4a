/*
 * fuzz_msg.c - libFuzzer harness for the Raft message decoder (raft/msg.c).
 *
 * msg_decode() takes bytes from the network, so it must reject anything
 * malformed without crashing, reading out of bounds or leaking.  What it
 * accepts must be canonical: re-encoding the decoded message gives back
 * exactly the input bytes (abort otherwise, so the fuzzer reports it).
 * The same input is also fed to msg_decode_entry(), the WAL record layout.
 *
 * Build and run (see `make fuzz-msg`):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. \
 *       raft/msg.c tests/fuzz/fuzz_msg.c -o fuzz_msg
 *   ./fuzz_msg -max_total_time=60 tests/fuzz/corpus/msg
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "raft/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_message(const uint8_t *data, size_t size)
{
	struct raft_msg m;
	uint8_t *out;
	size_t n;

	if (msg_decode(data, size, &m) != 0)
		return;
	n = msg_encoded_size(&m);
	if (n != size)
		abort();
	out = malloc(n);
	if (out == NULL)
		abort();
	if (msg_encode(&m, out, n) != (long)n || memcmp(out, data, n) != 0)
		abort();
	free(out);
	msg_release(&m);
}

static void check_entry(const uint8_t *data, size_t size)
{
	struct raft_entry e;
	uint8_t *out;
	long used = msg_decode_entry(data, size, &e);

	if (used < 0)
		return;
	if ((size_t)used > size || (size_t)used != msg_entry_encoded_size(&e))
		abort();
	out = malloc((size_t)used);
	if (out == NULL)
		abort();
	if (msg_encode_entry(&e, out, (size_t)used) != used ||
	    memcmp(out, data, (size_t)used) != 0)
		abort();
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_message(data, size);
	check_entry(data, size);
	return 0;
}
