/*
 * linz_model.c - the sequential models the checker linearizes against.
 *
 * Both are described in linz.h.  A step maps (state, operation with its
 * recorded answer) to the states the operation may leave behind: none
 * when the answer is impossible in that state.  Only a write whose answer
 * is ErrMaybe (strict model) or unknown (both) has two: "applied", listed
 * first, and "no effect", listed last -- linz_search.c relies on that
 * order.
 */
#include <string.h>

#include "tests/lib/linz_int.h"

int linz__strict_answer(const struct mstate *s, const struct rec *op)
{
	if (op->kind == LINZ_PUT) {
		if (s->exists)
			return op->version == s->version ? LINZ_RES_OK
			                                 : LINZ_RES_ERR_VERSION;
		return op->version == 0 ? LINZ_RES_OK : LINZ_RES_ERR_NOKEY;
	}
	if (!s->exists)
		return LINZ_RES_ERR_NOKEY;
	return op->version == s->version ? LINZ_RES_OK : LINZ_RES_ERR_VERSION;
}

/* The state after a strict-model write that applied. */
static struct mstate strict_applied(const struct rec *op)
{
	struct mstate a;

	memset(&a, 0, sizeof(a));
	if (op->kind == LINZ_PUT) {
		a.exists = 1;
		a.val = op->val;
		a.version = op->version + 1; /* 0 creates with version 1 */
	}
	return a; /* Delete: absent */
}

static int strict_step(const struct mstate *s, const struct rec *op,
    struct mstate out[2])
{
	int would, n = 0;

	if (op->kind == LINZ_GET) {
		bool ok = s->exists ? op->result == LINZ_RES_OK &&
		        op->val == s->val && op->version == s->version
		                    : op->result == LINZ_RES_ERR_NOKEY;

		out[0] = *s;
		return ok ? 1 : 0;
	}
	would = linz__strict_answer(s, op);
	switch (op->result) {
	case LINZ_RES_ERR_MAYBE:
	case LINZ_RES_UNKNOWN:
		if (would == LINZ_RES_OK)
			out[n++] = strict_applied(op);
		out[n++] = *s;
		return n;
	case LINZ_RES_OK:
		if (would != LINZ_RES_OK)
			return 0;
		out[0] = strict_applied(op);
		return 1;
	default: /* ErrVersion, ErrNoKey */
		if (would != op->result)
			return 0;
		out[0] = *s;
		return 1;
	}
}

/* models1/kv.go's Step, plus Delete and unknown answers (see linz.h). */
static int lab_step(const struct mstate *s, const struct rec *op,
    struct mstate out[2])
{
	struct mstate applied = { 0, LINZ__EMPTY, 0 };

	if (op->kind == LINZ_GET) {
		out[0] = *s;
		return op->val == s->val ? 1 : 0;
	}
	if (op->kind == LINZ_PUT) {
		applied.val = op->val;
		applied.version = s->version + 1;
	}
	if (op->version == s->version ||
	    (op->kind == LINZ_PUT && op->version == LINZ_ANY_VERSION)) {
		switch (op->result) {
		case LINZ_RES_OK:
		case LINZ_RES_ERR_MAYBE: /* the lab: it applied */
			out[0] = applied;
			return 1;
		case LINZ_RES_UNKNOWN:
			out[0] = applied;
			out[1] = *s;
			return 2;
		default:
			return 0;
		}
	}
	switch (op->result) {
	case LINZ_RES_ERR_VERSION:
	case LINZ_RES_ERR_MAYBE:
	case LINZ_RES_UNKNOWN:
		out[0] = *s;
		return 1;
	default: /* OK, ErrNoKey */
		return 0;
	}
}

int linz__model_step(enum linz_model model, const struct mstate *s,
    const struct rec *op, struct mstate out[2])
{
	return model == LINZ_MODEL_LAB ? lab_step(s, op, out)
	                               : strict_step(s, op, out);
}

bool linz__droppable(enum linz_model model, const struct rec *op)
{
	return op->kind != LINZ_GET &&
	    (op->result == LINZ_RES_UNKNOWN ||
	        (model == LINZ_MODEL_STRICT &&
	            op->result == LINZ_RES_ERR_MAYBE));
}

bool linz__read_only(const struct rec *op)
{
	return op->kind == LINZ_GET || op->result == LINZ_RES_ERR_VERSION ||
	    op->result == LINZ_RES_ERR_NOKEY;
}
