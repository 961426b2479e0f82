// SPDX-License-Identifier: MIT
/*
 * Background jobs, shown as .jobs/ID with the CIM_ConcreteJob fields.
 * Each job runs in its own detached thread; the job record outlives it
 * until `rm .jobs/ID` or unmount.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "vhdfs.h"

enum job_state {
	JOB_STARTING = 3,
	JOB_RUNNING = 4,
	JOB_COMPLETED = 7,
	JOB_TERMINATED = 8,
	JOB_EXCEPTION = 10,
};

struct job {
	unsigned long id;
	char *command;
	struct vhdfs_job_args args;
	/* The fields below are protected by jobs_lock. */
	enum job_state state;
	int percent;
	int error_code;		    /* ReturnValue */
	char error[1024];	    /* ErrorDescription */
	struct timespec start;	    /* CLOCK_REALTIME */
	struct timespec mono_start; /* CLOCK_MONOTONIC */
	struct timespec mono_end;
	bool cancel;
	bool committing; /* past the point a cancel can stop */
	bool done;	 /* worker finished with the record */
	struct job *next;
};

static pthread_mutex_t jobs_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t jobs_cond = PTHREAD_COND_INITIALIZER;
static struct job *jobs, **jobs_tail = &jobs; /* protected by jobs_lock */
static unsigned long next_id = 1;	      /* protected by jobs_lock */
static int workers;			      /* protected by jobs_lock */

static bool finished(const struct job *j)
{
	return j->state == JOB_COMPLETED || j->state == JOB_TERMINATED ||
	       j->state == JOB_EXCEPTION;
}

/* Record the outcome unless the job was terminated meanwhile. */
static void finish(struct job *j, int err, const char *msg)
{
	pthread_mutex_lock(&jobs_lock);
	if (j->state != JOB_TERMINATED) {
		j->state = err ? JOB_EXCEPTION : JOB_COMPLETED;
		j->error_code = vhdfs_return_value(-err);
		if (err && msg) {
			snprintf(j->error, sizeof(j->error), "%s", msg);
			vhdfs_unfd(j->error, sizeof(j->error));
		}
		if (!err)
			j->percent = 100;
	}
	clock_gettime(CLOCK_MONOTONIC, &j->mono_end);
	j->done = true;
	workers--;
	pthread_cond_broadcast(&jobs_cond);
	pthread_mutex_unlock(&jobs_lock);
}

/*
 * Last word before the image gets its name: a cancel either came before
 * (nothing is linked) or finds the job past cancelling.
 */
static int create_commit(void *ctx)
{
	struct job *j = ctx;
	int ret = 0;

	pthread_mutex_lock(&jobs_lock);
	if (j->cancel)
		ret = -ECANCELED;
	else
		j->committing = true;
	pthread_mutex_unlock(&jobs_lock);
	return ret;
}

static void run_create(struct job *j)
{
	struct vhd_create_opts opts = j->args.opts;
	int ret;

	opts.commit = create_commit;
	opts.ctx = j;
	ret = vhd_create_ex(j->args.path, &j->args.params, &opts);
	if (ret == -EEXIST) {
		finish(j, ret, "target exists");
	} else if (ret) {
		const char *m = vhd_errmsg();

		finish(j, ret, m && *m ? m : strerror(-ret));
	} else {
		finish(j, 0, NULL);
	}
}

struct check_ctx {
	struct job *job;
	int problems;
};

static void report(void *vctx, const char *msg)
{
	struct check_ctx *c = vctx;

	/* Keep the first problem; the count is added at the end. */
	if (c->problems++ == 0) {
		pthread_mutex_lock(&jobs_lock);
		snprintf(c->job->error, sizeof(c->job->error), "%s", msg);
		pthread_mutex_unlock(&jobs_lock);
	}
}

static void run_validate(struct job *j)
{
	struct check_ctx c = {.job = j};
	char msg[1200];
	int ret = vhd_check(j->args.path, report, &c);

	if (ret < 0) {
		const char *m = vhd_errmsg();

		finish(j, ret, m && *m ? m : strerror(-ret));
	} else if (ret > 0) {
		pthread_mutex_lock(&jobs_lock);
		snprintf(msg, sizeof(msg), "%d problem%s: %s", ret,
			 ret == 1 ? "" : "s", j->error);
		pthread_mutex_unlock(&jobs_lock);
		/* An inconsistent image fails validation (ReturnValue 32768) */
		finish(j, -EIO, msg);
	} else {
		finish(j, 0, NULL);
	}
}

static void *worker(void *arg)
{
	struct job *j = arg;
	/* Read now: once finished, the record may go with `rm .jobs/ID`. */
	int dirfd = j->args.kind == VHDFS_JOB_CREATE ? j->args.dirfd : -1;

	pthread_mutex_lock(&jobs_lock);
	bool cancel = j->cancel;

	pthread_mutex_unlock(&jobs_lock);
	if (cancel)
		finish(j, -ECANCELED, NULL);
	else if (j->args.kind == VHDFS_JOB_CREATE)
		run_create(j);
	else
		run_validate(j);
	if (dirfd >= 0)
		close(dirfd);
	return NULL;
}

int vhdfs_job_start(const struct vhdfs_job_args *args, const char *command,
		    unsigned long *id)
{
	struct job *j = calloc(1, sizeof(*j));
	pthread_attr_t attr;
	pthread_t t;
	int ret;

	if (j)
		j->command = strdup(command);
	if (!j || !j->command) {
		free(j);
		if (args->kind == VHDFS_JOB_CREATE)
			close(args->dirfd);
		return -ENOMEM;
	}
	j->args = *args;
	/* Running from the start: a `while JobState=4` loop must not end
	 * before the worker thread got scheduled. */
	j->state = JOB_RUNNING;
	clock_gettime(CLOCK_REALTIME, &j->start);
	clock_gettime(CLOCK_MONOTONIC, &j->mono_start);

	pthread_mutex_lock(&jobs_lock);
	j->id = next_id++;
	*jobs_tail = j;
	jobs_tail = &j->next;
	workers++;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ret = -pthread_create(&t, &attr, worker, j);
	pthread_attr_destroy(&attr);
	if (ret) {
		workers--;
		j->state = JOB_EXCEPTION;
		j->error_code = vhdfs_return_value(-ret);
		snprintf(j->error, sizeof(j->error), "cannot start thread");
		j->done = true;
		if (args->kind == VHDFS_JOB_CREATE)
			close(args->dirfd);
	}
	*id = j->id;
	pthread_mutex_unlock(&jobs_lock);
	return ret;
}

static struct job *find(unsigned long id)
{
	struct job *j;

	for (j = jobs; j; j = j->next)
		if (j->id == id)
			return j;
	return NULL;
}

int vhdfs_job_cancel(unsigned long id)
{
	struct job *j;
	int ret = 0;

	pthread_mutex_lock(&jobs_lock);
	j = find(id);
	if (!j) {
		ret = -ENOENT;
	} else if (finished(j) || j->committing) {
		ret = -EPERM;
	} else {
		j->cancel = true;
		j->state = JOB_TERMINATED;
		j->error_code = vhdfs_return_value(0);
		snprintf(j->error, sizeof(j->error), "cancelled");
	}
	pthread_mutex_unlock(&jobs_lock);
	return ret;
}

/* CIM DATETIME: yyyymmddHHMMSS.mmmmmmsUUU (UTC). */
static void cim_time(const struct timespec *ts, char *buf, size_t len)
{
	struct tm tm;

	gmtime_r(&ts->tv_sec, &tm);
	snprintf(buf, len, "%04d%02d%02d%02d%02d%02d.%06ld+000",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, ts->tv_nsec / 1000);
}

/* CIM interval: ddddddddHHMMSS.mmmmmm:000 */
static void cim_interval(const struct timespec *a, const struct timespec *b,
			 char *buf, size_t len)
{
	long long us = (b->tv_sec - a->tv_sec) * 1000000ll +
		       (b->tv_nsec - a->tv_nsec) / 1000;
	long long s = us / 1000000;

	if (us < 0)
		us = s = 0;
	snprintf(buf, len, "%08lld%02lld%02lld%02lld.%06lld:000", s / 86400,
		 s / 3600 % 24, s / 60 % 60, s % 60, us % 1000000);
}

int vhdfs_job_render(unsigned long id, char **text, size_t *len)
{
	struct timespec now;
	char start[64], elapsed[64], *cmd,
		err[sizeof(((struct job *)0)->error) * 4];
	struct job *j;
	size_t clen;
	int n;

	pthread_mutex_lock(&jobs_lock);
	j = find(id);
	if (!j) {
		pthread_mutex_unlock(&jobs_lock);
		return -ENOENT;
	}
	if (j->done)
		now = j->mono_end;
	else
		clock_gettime(CLOCK_MONOTONIC, &now);
	/* One line per key, whatever a file name or message holds. */
	clen = strlen(j->command) * 4 + 1;
	cmd = malloc(clen);
	if (!cmd) {
		pthread_mutex_unlock(&jobs_lock);
		return -ENOMEM;
	}
	vhdfs_escape(cmd, clen, j->command, strlen(j->command), false);
	vhdfs_escape(err, sizeof(err), j->error, strlen(j->error), false);
	cim_time(&j->start, start, sizeof(start));
	cim_interval(&j->mono_start, &now, elapsed, sizeof(elapsed));
	n = asprintf(text,
		     "InstanceID=%lu\nCommand=%s\nJobState=%d\n"
		     "PercentComplete=%d\nErrorCode=%d\n"
		     "ErrorDescription=%s\nStartTime=%s\nElapsedTime=%s\n",
		     j->id, cmd, j->state, j->percent, j->error_code, err,
		     start, elapsed);
	pthread_mutex_unlock(&jobs_lock);
	free(cmd);
	if (n < 0)
		return -ENOMEM;
	*len = (size_t)n;
	return 0;
}

int vhdfs_job_remove(unsigned long id)
{
	struct job **p, *j;

	pthread_mutex_lock(&jobs_lock);
	for (p = &jobs; *p && (*p)->id != id; p = &(*p)->next)
		;
	j = *p;
	if (!j || !j->done) {
		pthread_mutex_unlock(&jobs_lock);
		return j ? -EBUSY : -ENOENT;
	}
	*p = j->next;
	if (jobs_tail == &j->next)
		jobs_tail = p;
	pthread_mutex_unlock(&jobs_lock);
	free(j->command);
	free(j);
	return 0;
}

void vhdfs_job_foreach(void (*fn)(void *ctx, unsigned long id), void *ctx)
{
	unsigned long ids[256];
	unsigned long after = 0;
	size_t n;

	/* Batches, so @fn never runs under jobs_lock. */
	do {
		struct job *j;

		n = 0;
		pthread_mutex_lock(&jobs_lock);
		for (j = jobs; j && n < 256; j = j->next)
			if (j->id > after)
				ids[n++] = j->id;
		pthread_mutex_unlock(&jobs_lock);
		for (size_t i = 0; i < n; i++)
			fn(ctx, ids[i]);
		if (n)
			after = ids[n - 1];
	} while (n == 256);
}

void vhdfs_jobs_destroy(void)
{
	struct job *j;

	pthread_mutex_lock(&jobs_lock);
	for (j = jobs; j; j = j->next) {
		if (!finished(j)) {
			j->cancel = true;
			j->state = JOB_TERMINATED;
		}
	}
	while (workers > 0)
		pthread_cond_wait(&jobs_cond, &jobs_lock);
	while (jobs) {
		j = jobs;
		jobs = j->next;
		free(j->command);
		free(j);
	}
	jobs_tail = &jobs;
	pthread_mutex_unlock(&jobs_lock);
}
