// SPDX-License-Identifier: MIT
/* vhd: command-line front end of libvhd. Dispatches to one command. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

/*
 * Every command, in the order `vhd --help` lists them. New commands (merge,
 * compact, expand, reparent) get one line here and a cmd_*.c file.
 */
static const struct cli_command commands[] = {
	{"create", cmd_create,
	 "create [--fixed|--dynamic] [--block-size SIZE] PATH SIZE",
	 "create a fixed or dynamic image"},
	{"diff", cmd_diff, "diff CHILD PARENT",
	 "create a differencing image CHILD on top of PARENT"},
	{"info", cmd_info, "info [--json] PATH",
	 "show the metadata and the parent chain of an image"},
	{"cat", cmd_cat, "cat PATH",
	 "write the flat (resolved) disk image to standard output"},
	{"check", cmd_check, "check PATH",
	 "check the consistency of an image and its chain"},
	/* merge and convert (issue 8, branch merge) */
	{"merge", cmd_merge, "merge CHILD [ANCESTOR]",
	 "fold a differencing image (and levels above ANCESTOR) into it"},
	{"convert", cmd_convert,
	 "convert [--fixed|--dynamic] [--block-size SIZE] SRC DST "
	 "[fixed|dynamic]",
	 "write the flat content of an image or chain into a new image"},
	/* image operations (compact, expand, reparent, repair, map) */
	{"compact", cmd_compact, "compact PATH",
	 "give back the space of blocks that add nothing to the view"},
	{"expand", cmd_expand, "expand PATH SIZE",
	 "grow a fixed or dynamic image (the new tail reads zeros)"},
	{"reparent", cmd_reparent,
	 "reparent [--ignore-id-mismatch] CHILD PARENT",
	 "point a differencing image at a (moved or new) parent"},
	{"repair", cmd_repair, "repair [--checksums] PATH",
	 "restore a damaged footer copy; recompute checksums if asked"},
	{"map", cmd_map, "map [--json] PATH",
	 "show which chain level supplies each extent"},
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

const struct cli_command *cli_find_command(const char *name)
{
	size_t i;

	for (i = 0; i < N_COMMANDS; i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

void cli_print_usage(FILE *f, const char *cmd)
{
	const struct cli_command *c = cli_find_command(cmd);

	if (c)
		fprintf(f, "usage: vhd %s\n", c->usage);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	if (fmt) {
		fputs("vhd: ", stderr);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	cli_print_usage(stderr, cmd);
	return CLI_EXIT_USAGE;
}

static void print_help(FILE *f)
{
	size_t i;

	fputs("usage: vhd COMMAND [ARGS...]\n"
	      "       vhd --help | --version | help COMMAND\n\n"
	      "Create, inspect and read VHD images (fixed, dynamic, "
	      "differencing).\n\n"
	      "Commands:\n",
	      f);
	for (i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].help);
	fputs("\nSIZE is bytes or a number with a K, M, G or T suffix "
	      "(powers of 1024).\n"
	      "Exit status: 0 success, 1 failure or problems found, "
	      "2 usage error.\n"
	      "See vhd(1).\n",
	      f);
}

/* `vhd help [CMD]` */
static int help_command(int argc, char **argv)
{
	const struct cli_command *c;

	if (argc < 2) {
		print_help(stdout);
		return CLI_EXIT_OK;
	}
	c = cli_find_command(argv[1]);
	if (!c) {
		cli_msg("unknown command '%s'", argv[1]);
		return CLI_EXIT_USAGE;
	}
	printf("usage: vhd %s\n%s\n", c->usage, c->help);
	return CLI_EXIT_OK;
}

int main(int argc, char **argv)
{
	const struct cli_command *c;

	/* A closed pipe shows up as EPIPE from write(2), handled quietly. */
	signal(SIGPIPE, SIG_IGN);

	if (argc < 2) {
		print_help(stderr);
		return CLI_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		print_help(stdout);
		return CLI_EXIT_OK;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("vhd (vhdfs) %s\n", VHDFS_VERSION);
		return CLI_EXIT_OK;
	}
	if (!strcmp(argv[1], "help"))
		return help_command(argc - 1, argv + 1);
	c = cli_find_command(argv[1]);
	if (!c) {
		if (argv[1][0] == '-')
			cli_msg("unknown option '%s'", argv[1]);
		else
			cli_msg("unknown command '%s'", argv[1]);
		fputs("Try 'vhd --help'.\n", stderr);
		return CLI_EXIT_USAGE;
	}
	return c->run(argc - 1, argv + 1);
}
