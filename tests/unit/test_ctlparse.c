// SPDX-License-Identifier: MIT
/*
 * The .control line parser (fuse/ctlparse.c): tokens and quoting, the
 * implicit diff, the canonical text (which parses back to the same
 * tokens), every verb with its argument counts, every refusal with its
 * errno and reason, and the escaping of result text (fuse/escape.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "vhdfs.h"

struct parsed {
	int n;
	char line[512], canon[512], msg[256];
	char *tok[VHDFS_CTL_MAX_TOKENS + 1];
};

static struct parsed *parse(const char *text)
{
	static struct parsed p;

	memset(&p, 0, sizeof(p));
	snprintf(p.line, sizeof(p.line), "%s", text);
	p.n = vhdfs_ctl_parse(p.line, p.tok, p.canon, sizeof(p.canon), p.msg,
			      sizeof(p.msg));
	return &p;
}

static void test_tokens(void **state)
{
	struct parsed *p;

	(void)state;
	p = parse("  create\tbig.vhd   100G fixed ");
	assert_int_equal(p->n, 4);
	assert_string_equal(p->tok[0], "create");
	assert_string_equal(p->tok[1], "big.vhd");
	assert_string_equal(p->tok[2], "100G");
	assert_string_equal(p->tok[3], "fixed");
	assert_null(p->tok[4]);
	assert_string_equal(p->canon, "create big.vhd 100G fixed");

	p = parse("diff \"my child.vhd\" \"a\\\"b\\\\c.vhd\"");
	assert_int_equal(p->n, 3);
	assert_string_equal(p->tok[1], "my child.vhd");
	assert_string_equal(p->tok[2], "a\"b\\c.vhd");
	assert_string_equal(p->canon,
			    "diff \"my child.vhd\" \"a\\\"b\\\\c.vhd\"");
}

static void test_implicit_diff(void **state)
{
	struct parsed *p;

	(void)state;
	p = parse("child.vhd base.vhd");
	assert_int_equal(p->n, 3);
	assert_string_equal(p->tok[0], "diff");
	assert_string_equal(p->tok[1], "child.vhd");
	assert_string_equal(p->tok[2], "base.vhd");
	assert_null(p->tok[3]);
	assert_string_equal(p->canon, "diff child.vhd base.vhd");
}

/* The canonical text is what .control shows: it parses back the same. */
static void test_canonical_round_trip(void **state)
{
	static const char *const lines[] = {
		"diff \"\" x",	    "a\"b c\"d e.vhd", "validate \\",
		"cancel \"7\"",	    "x.vhd \"p q\"",   "create \"\\\\\" 1M",
		"merge \"a\tb\" c",
	};
	char again[512], canon2[512], msg[256];
	char *tok2[VHDFS_CTL_MAX_TOKENS + 1];

	(void)state;
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		struct parsed *p = parse(lines[i]);
		int n = p->n == -EOPNOTSUPP ? 0 : p->n;

		if (!n)
			continue;
		snprintf(again, sizeof(again), "%s", p->canon);
		assert_int_equal(vhdfs_ctl_parse(again, tok2, canon2,
						 sizeof(canon2), msg,
						 sizeof(msg)),
				 n);
		for (int k = 0; k < n; k++)
			assert_string_equal(p->tok[k], tok2[k]);
		assert_string_equal(p->canon, canon2);
	}
}

static void refused(const char *line, int err, const char *why)
{
	struct parsed *p = parse(line);

	assert_int_equal(p->n, -err);
	if (!strstr(p->msg, why))
		fail_msg("\"%s\": reason \"%s\" lacks \"%s\"", line, p->msg,
			 why);
}

static void test_refusals(void **state)
{
	(void)state;
	refused("", EINVAL, "empty");
	refused(" \t ", EINVAL, "empty");
	refused("diff \"child.vhd base.vhd", EINVAL, "malformed");
	refused("a b c d e f g h i", EINVAL, "malformed");
	refused("frobnicate x y z", EINVAL, "unknown command: frobnicate");
	refused("diff only.vhd", EINVAL, "wrong number of arguments for diff");
	refused("create x.vhd", EINVAL, "wrong number of arguments for create");
	refused("cancel", EINVAL, "wrong number of arguments for cancel");
	refused("merge a b c", EINVAL, "wrong number of arguments for merge");
	refused("convert a b", EINVAL, "wrong number of arguments for convert");
}

/* Each verb at its fewest and most arguments, and one past either end. */
static void test_every_verb(void **state)
{
	static const struct {
		const char *name;
		int min, max;
	} verbs[] = {
		{"diff", 2, 2},	  {"create", 2, 4},   {"validate", 1, 1},
		{"cancel", 1, 1}, {"merge", 1, 2},    {"compact", 1, 1},
		{"expand", 2, 2}, {"reparent", 2, 3}, {"convert", 3, 4},
	};
	char line[128];

	(void)state;
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		for (int k = verbs[i].min - 1; k <= verbs[i].max + 1; k++) {
			struct parsed *p;
			int o;

			o = snprintf(line, sizeof(line), "%s", verbs[i].name);
			for (int a = 0; a < k; a++)
				o += snprintf(line + o, sizeof(line) - o,
					      " a%d", a);
			p = parse(line);
			if (k < verbs[i].min || k > verbs[i].max) {
				assert_int_equal(p->n, -EINVAL);
				assert_non_null(strstr(p->msg, "wrong number"));
				continue;
			}
			assert_int_equal(p->n, k + 1);
			assert_string_equal(p->tok[0], verbs[i].name);
			/* The verb outlives the line: a job keeps it. */
			assert_true(p->tok[0] < p->line ||
				    p->tok[0] >= p->line + sizeof(p->line));
			assert_string_equal(p->canon, line);
		}
	}
}

static void test_escape(void **state)
{
	char out[64];

	(void)state;
	vhdfs_escape(out, sizeof(out), "say \"hi\"\nback\\slash", 19, true);
	assert_string_equal(out, "say \\\"hi\\\"\\nback\\\\slash");
	/* Truncation never splits an escape. */
	vhdfs_escape(out, 6, "ab\"\"\"", 5, true);
	assert_string_equal(out, "ab\\\"");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tokens),
		cmocka_unit_test(test_implicit_diff),
		cmocka_unit_test(test_canonical_round_trip),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_every_verb),
		cmocka_unit_test(test_escape),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
