/* SPDX-License-Identifier: MIT */
/*
 * Shared pieces of the vhd command-line tool: the command table entry type,
 * the command entry points and the error/usage helpers every command uses.
 */
#ifndef VHD_CLI_H
#define VHD_CLI_H

#include <stdbool.h>
#include <stdio.h>

/* Exit statuses, as documented in vhd(1). */
#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1	 /* operation failed or problems found */
#define CLI_EXIT_USAGE 2 /* unknown command/option, missing args, bad size */

/*
 * One subcommand. @run gets argv with argv[0] = the command name and
 * returns an exit status. @usage is the synopsis after "vhd ", @help one
 * line for the command list.
 */
struct cli_command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *usage;
	const char *help;
};

int cmd_create(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_cat(int argc, char **argv);
int cmd_check(int argc, char **argv);
/* merge and convert (issue 8, branch merge) */
int cmd_merge(int argc, char **argv);
int cmd_convert(int argc, char **argv);
/* image operations */
int cmd_compact(int argc, char **argv);
int cmd_expand(int argc, char **argv);
int cmd_reparent(int argc, char **argv);
int cmd_repair(int argc, char **argv);
int cmd_map(int argc, char **argv);

/* Table lookup by name; NULL when unknown. */
const struct cli_command *cli_find_command(const char *name);

/*
 * Report a failed library call: "vhd: <vhd_errmsg()>" when the library left
 * a message, else "vhd: PATH: strerror(-err)". Returns CLI_EXIT_FAIL.
 */
int cli_fail(const char *path, int err);

/* "vhd: <formatted message>" on stderr. */
void cli_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Usage error: prints "vhd: <message>" (if @fmt) and the command's
 * synopsis on stderr. Returns CLI_EXIT_USAGE.
 */
int cli_usage_error(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Print "usage: vhd <synopsis>" for @cmd to @f. */
void cli_print_usage(FILE *f, const char *cmd);

/*
 * Turn a getopt_long() error return (@c is '?' or ':') into a usage error
 * naming the bad option. Returns CLI_EXIT_USAGE.
 */
int cli_option_error(const char *cmd, int c, char **argv);

/*
 * Parse the options of a command that takes only -h/--help and exactly
 * @nargs operands. Returns -1 when the command should go on (operands at
 * argv[optind]), else the exit status to return (help printed: 0; usage
 * error: 2).
 */
int cli_parse_plain(int argc, char **argv, int nargs);
/*
 * The same for a command with one boolean long option --@flag: *@set
 * tells whether it was given.
 */
int cli_parse_flag(int argc, char **argv, const char *flag, bool *set,
		   int nargs);
/*
 * After option parsing: -1 when exactly @nargs operands remain at
 * argv[optind], else the usage-error exit status (message printed).
 */
int cli_check_operands(int argc, char **argv, int nargs);

/*
 * Options of the commands that make an image (create, convert): --fixed,
 * --dynamic, --block-size SIZE, -h. Sets @p->type and @block_arg; returns
 * -1 to go on (operands at argv[optind]), else the exit status to return.
 */
struct vhd_create_params;
int cli_parse_image_opts(int argc, char **argv, struct vhd_create_params *p,
			 const char **block_arg);
/*
 * Apply a --block-size argument (NULL: none) to @p after the type is
 * known: -1 to go on, or the usage-error status (fixed image, bad size).
 */
int cli_apply_block_size(const char *cmd, struct vhd_create_params *p,
			 const char *block_arg);

#endif
