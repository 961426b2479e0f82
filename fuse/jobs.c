// SPDX-License-Identifier: MIT
/*
 * Background jobs, shown as .jobs/ID with the CIM_ConcreteJob fields.
 * At most VHDFS_JOB_WORKERS jobs run at once, each in a detached worker
 * thread (the mount keeps serving); later ones wait in a queue, oldest
 * first, and a worker takes the next when it is done. A job runs with
 * a progress callback that moves PercentComplete and carries `cancel ID`
 * into the operation; the record outlives the thread until `rm .jobs/ID`
 * or unmount. The images a job changes are claimed (busy) until it ends.
 */
#include <errno.h>
#include <stdatomic.h>
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
	vhdfs_job_run_fn run;
	/*
	 * The worker's: read-only once started, but for nclaims. Freed when
	 * the job finishes (NULL from then on), so a finished record is
	 * small. The pointer and nclaims are protected by jobs_lock.
	 */
	struct vhdfs_job_args *args;
	/* The fields below are protected by jobs_lock. */
	enum job_state state;
	int percent;
	int error_code;		    /* ReturnValue */
	char error[1024];	    /* ErrorDescription */
	struct timespec start;	    /* CLOCK_REALTIME */
	struct timespec mono_start; /* CLOCK_MONOTONIC */
	struct timespec mono_end;
	bool cancel;	/* `cancel ID` asked */
	bool committed; /* past the point of no return: cancel refused */
	bool done;	/* worker finished with the record */
	bool queued;	/* waiting for a worker */
};

static pthread_mutex_t jobs_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t jobs_cond = PTHREAD_COND_INITIALIZER;
/* Every record, ascending ids; protected by jobs_lock. */
static struct job *table[VHDFS_JOBS_MAX];
static size_t njobs;
static unsigned long next_id = 1; /* protected by jobs_lock */
static int workers;		  /* threads alive; protected by jobs_lock */
static size_t nqueued;		  /* records queued; protected by jobs_lock */

static bool finished(const struct job *j)
{
	return j->state == JOB_COMPLETED || j->state == JOB_TERMINATED ||
	       j->state == JOB_EXCEPTION;
}

/*
 * Record the outcome and release the job's images; returns the args for
 * the caller to free once jobs_lock is dropped. Caller holds jobs_lock.
 */
static struct vhdfs_job_args *finish_locked(struct job *j, int err,
					    const char *msg)
{
	struct vhdfs_job_args *args = j->args;

	j->args = NULL;
	if (err == -ECANCELED) {
		j->state = JOB_TERMINATED;
		j->error_code = vhdfs_return_value(0);
		snprintf(j->error, sizeof(j->error), "cancelled");
	} else {
		j->state = err ? JOB_EXCEPTION : JOB_COMPLETED;
		j->error_code = vhdfs_return_value(-err);
		if (err && msg)
			snprintf(j->error, sizeof(j->error), "%s", msg);
		if (!err)
			j->percent = 100;
	}
	clock_gettime(CLOCK_MONOTONIC, &j->mono_end);
	j->done = true;
	return args;
}

static void finish(struct job *j, int err, const char *msg)
{
	pthread_mutex_lock(&jobs_lock);
	free(finish_locked(j, err, msg));
	pthread_mutex_unlock(&jobs_lock);
}

/*
 * End a job that never ran (queued) as cancelled, e.g. on `cancel ID`.
 * Caller holds jobs_lock; closing a directory fd does not block.
 */
static void drop_queued(struct job *j)
{
	struct vhdfs_job_args *args;

	j->queued = false;
	nqueued--;
	args = finish_locked(j, -ECANCELED, NULL);
	if (args->dirfd >= 0)
		close(args->dirfd);
	free(args);
}

/* VHDFS_JOB_THROTTLE_MS, read at each job start; workers read it too */
static atomic_uint throttle_ms;

/* The vhd_progress_fn of every job: @ctx is its struct job. */
static int job_progress(void *ctx, uint64_t done, uint64_t total)
{
	unsigned ms = atomic_load(&throttle_ms);
	struct job *j = ctx;
	int stop;

	if (ms) {
		struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

		nanosleep(&ts, NULL);
	}
	pthread_mutex_lock(&jobs_lock);
	stop = j->cancel;
	if (!stop) {
		if (done < total) {
			int p = (int)(done * 100 / total);

			j->percent = p > 99 ? 99 : p;
		} else {
			j->committed = true;
		}
	}
	pthread_mutex_unlock(&jobs_lock);
	return stop;
}

/*
 * Last word before the image gets its name: a cancel either came before
 * (nothing is linked) or finds the job past cancelling.
 */
struct commit_ctx {
	vhd_progress_fn progress;
	void *pctx;
};

/*
 * Last word before the image gets its name: the point of no return, so a
 * cancel either came before (nothing is linked) or finds it past.
 */
static int create_commit(void *ctx)
{
	struct commit_ctx *c = ctx;

	return c->progress(c->pctx, 1, 1) ? -ECANCELED : 0;
}

static int run_create(const struct vhdfs_job_args *a, vhd_progress_fn progress,
		      void *pctx, char *msg, size_t msglen)
{
	struct vhd_create_opts opts = a->opts;
	struct commit_ctx c = {progress, pctx};
	int ret;

	progress(pctx, 0, 1);
	opts.commit = create_commit;
	opts.ctx = &c;
	ret = vhd_create_ex(a->path, &a->params, &opts);
	if (ret == -EEXIST)
		snprintf(msg, msglen, "target exists: %s", a->path);
	return ret;
}

struct check_ctx {
	char *first; /* first problem, in the job's message buffer */
	size_t len;
	int problems;
};

static void report(void *vctx, const char *msg)
{
	struct check_ctx *c = vctx;

	/* Keep the first problem; the count is added at the end. */
	if (c->problems++ == 0)
		snprintf(c->first, c->len, "%s", msg);
}

static int run_validate(const struct vhdfs_job_args *a,
			vhd_progress_fn progress, void *pctx, char *msg,
			size_t msglen)
{
	char first[1024] = "";
	struct check_ctx c = {first, sizeof(first), 0};
	int ret;

	progress(pctx, 0, 1);
	ret = vhd_check(a->path, report, &c);
	/* The check cannot stop half-way: a cancel during it ends here. */
	if (ret >= 0 && progress(pctx, 1, 1))
		return -ECANCELED;
	if (ret > 0) {
		snprintf(msg, msglen, "%d problem%s: %s", ret,
			 ret == 1 ? "" : "s", first);
		/* An inconsistent image fails validation (ReturnValue 32768) */
		return -EIO;
	}
	return ret;
}

/* The job kinds: see vhdfs.h for how to add one. */
static const struct {
	const char *verb;
	vhdfs_job_run_fn run;
} job_kinds[] = {
	{"create", run_create},		{"validate", run_validate},
	{"merge", vhdfs_run_merge},	{"convert", vhdfs_run_convert},
	{"compact", vhdfs_run_compact}, {"expand", vhdfs_run_expand},
};

static vhdfs_job_run_fn find_kind(const char *verb)
{
	for (size_t i = 0; i < sizeof(job_kinds) / sizeof(job_kinds[0]); i++)
		if (verb && strcmp(job_kinds[i].verb, verb) == 0)
			return job_kinds[i].run;
	return NULL;
}

/* Run one job taken off the queue, then record its outcome. */
static void run_job(struct job *j)
{
	/* Read now: once finished, the record may go with `rm .jobs/ID`. */
	int dirfd = j->args->dirfd;
	char msg[1024] = "";
	int ret;

	pthread_mutex_lock(&jobs_lock);
	bool cancel = j->cancel;

	pthread_mutex_unlock(&jobs_lock);
	if (cancel) {
		finish(j, -ECANCELED, NULL);
		if (dirfd >= 0)
			close(dirfd);
		return;
	}
	vhd_clear_error(); /* the worker's last job may have left one */
	ret = j->run(j->args, job_progress, j, msg, sizeof(msg));
	if (ret && ret != -ECANCELED && !msg[0]) {
		const char *m = vhd_errmsg();

		snprintf(msg, sizeof(msg), "%s", m && *m ? m : strerror(-ret));
	}
	vhdfs_own_writer_msg(msg, sizeof(msg), j->args->path);
	vhdfs_own_writer_msg(msg, sizeof(msg), j->args->path2);
	/* While dirfd is open: the message names the file through it. */
	vhdfs_unfd(msg, sizeof(msg));
	if (dirfd >= 0)
		close(dirfd);
	if (ret && ret != -ECANCELED)
		vhdfs_log("job %lu (%s) failed: %s", j->id, j->command, msg);
	finish(j, ret, msg);
}

/* Oldest queued job, taken off the queue; NULL when none. jobs_lock held. */
static struct job *next_queued(void)
{
	for (size_t k = 0; nqueued && k < njobs; k++)
		if (table[k]->queued) {
			table[k]->queued = false;
			nqueued--;
			return table[k];
		}
	return NULL;
}

/* A worker thread: runs queued jobs until none is left. */
static void *worker(void *arg)
{
	(void)arg;
	for (;;) {
		struct job *j;

		pthread_mutex_lock(&jobs_lock);
		j = next_queued();
		if (!j) {
			/* Under the lock: a later job starts a worker. */
			workers--;
			pthread_cond_broadcast(&jobs_cond);
			pthread_mutex_unlock(&jobs_lock);
			return NULL;
		}
		pthread_mutex_unlock(&jobs_lock);
		run_job(j);
	}
}

/* A running job holds @dev/@ino. Caller holds jobs_lock. */
static struct job *claimed_by(dev_t dev, ino_t ino)
{
	for (size_t k = 0; k < njobs; k++) {
		struct job *j = table[k];

		for (int i = 0; j->args && i < j->args->nclaims; i++)
			if (j->args->claims[i].dev == dev &&
			    j->args->claims[i].ino == ino)
				return j;
	}
	return NULL;
}

bool vhdfs_job_busy(const char *path)
{
	struct stat st;
	bool busy;

	if (vhdfs_stat(path, &st))
		return false;
	pthread_mutex_lock(&jobs_lock);
	busy = claimed_by(st.st_dev, st.st_ino) != NULL;
	pthread_mutex_unlock(&jobs_lock);
	return busy;
}

int vhdfs_job_claim(struct vhdfs_job_args *a, const char *path, char *msg,
		    size_t msglen)
{
	const char *shown = path;
	unsigned long owner = 0;
	struct stat st;

	if (strncmp(path, vhdfs_cfg.backing, vhdfs_cfg.backing_len) == 0 &&
	    path[vhdfs_cfg.backing_len] == '/')
		shown = path + vhdfs_cfg.backing_len + 1;
	int err = vhdfs_stat(path, &st);

	if (err) {
		snprintf(msg, msglen, "not found: %s", shown);
		return err;
	}
	for (int i = 0; i < a->nclaims; i++)
		if (a->claims[i].dev == st.st_dev &&
		    a->claims[i].ino == st.st_ino)
			return 0;
	if (a->nclaims == VHDFS_JOB_MAX_CLAIMS) {
		snprintf(msg, msglen, "too many images: %s", shown);
		return -E2BIG;
	}
	pthread_mutex_lock(&jobs_lock);
	struct job *j = claimed_by(st.st_dev, st.st_ino);

	if (j)
		owner = j->id;
	pthread_mutex_unlock(&jobs_lock);
	if (owner) {
		snprintf(msg, msglen, "%s is in use by job %lu", shown, owner);
		return -EBUSY;
	}
	if (vhdfs_image_writers(path) > 0) {
		snprintf(msg, msglen, "%s is open for writing", shown);
		return -EBUSY;
	}
	a->claims[a->nclaims].dev = st.st_dev;
	a->claims[a->nclaims].ino = st.st_ino;
	a->nclaims++;
	return 0;
}

int vhdfs_job_start(const struct vhdfs_job_args *args, const char *command,
		    unsigned long *id)
{
	vhdfs_job_run_fn run = find_kind(args->verb);
	struct job *j;
	pthread_attr_t attr;
	pthread_t t;
	int ret;

	if (!run) {
		if (args->dirfd >= 0)
			close(args->dirfd);
		return -EINVAL;
	}
	j = calloc(1, sizeof(*j));
	if (j) {
		j->command = strdup(command);
		j->args = malloc(sizeof(*j->args));
	}
	if (!j || !j->command || !j->args) {
		if (j) {
			free(j->command);
			free(j->args);
		}
		free(j);
		if (args->dirfd >= 0)
			close(args->dirfd);
		return -ENOMEM;
	}
	j->run = run;
	*j->args = *args;
	/*
	 * Running from the start, queued or not: the documented
	 * `while grep -q JobState=4` loop must not end before a worker took
	 * the job. A queued job shows PercentComplete 0 until then.
	 */
	j->state = JOB_RUNNING;
	clock_gettime(CLOCK_REALTIME, &j->start);
	clock_gettime(CLOCK_MONOTONIC, &j->mono_start);

	pthread_mutex_lock(&jobs_lock);
	if (getenv("VHDFS_JOB_THROTTLE_MS"))
		atomic_store(&throttle_ms,
			     (unsigned)atoi(getenv("VHDFS_JOB_THROTTLE_MS")));
	ret = njobs == VHDFS_JOBS_MAX ? -EAGAIN : 0;
	for (int i = 0; !ret && i < args->nclaims; i++)
		if (claimed_by(args->claims[i].dev, args->claims[i].ino))
			ret = -EBUSY;
	if (ret) {
		pthread_mutex_unlock(&jobs_lock);
		free(j->command);
		free(j->args);
		free(j);
		if (args->dirfd >= 0)
			close(args->dirfd);
		return ret;
	}
	j->id = next_id++;
	table[njobs++] = j; /* ids only grow: the table stays sorted */
	j->queued = true;
	nqueued++;
	if (workers < VHDFS_JOB_WORKERS) {
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		ret = -pthread_create(&t, &attr, worker, NULL);
		pthread_attr_destroy(&attr);
		if (!ret)
			workers++;
	}
	/* No worker to take it (a running one would, later): fail it. */
	if (ret && !workers) {
		j->queued = false;
		nqueued--;
		free(j->args);
		j->args = NULL;
		j->state = JOB_EXCEPTION;
		j->error_code = vhdfs_return_value(-ret);
		snprintf(j->error, sizeof(j->error), "cannot start thread");
		j->done = true;
		if (args->dirfd >= 0)
			close(args->dirfd);
	} else {
		ret = 0;
	}
	*id = j->id;
	pthread_mutex_unlock(&jobs_lock);
	return ret;
}

/* Index of the first record with an id >= @id (njobs: none). */
static size_t lower_bound(unsigned long id)
{
	size_t lo = 0, hi = njobs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (table[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct job *find(unsigned long id)
{
	size_t k = lower_bound(id);

	return k < njobs && table[k]->id == id ? table[k] : NULL;
}

int vhdfs_job_cancel(unsigned long id)
{
	struct job *j;
	int ret = 0;

	pthread_mutex_lock(&jobs_lock);
	j = find(id);
	if (!j)
		ret = -ENOENT;
	else if (finished(j) || j->committed)
		ret = -EPERM;
	else if (j->queued)
		drop_queued(j); /* never ran: ends here, Terminated */
	else
		j->cancel = true; /* the job stops at its next progress call */
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
	struct job *j;
	size_t k;

	pthread_mutex_lock(&jobs_lock);
	k = lower_bound(id);
	j = k < njobs && table[k]->id == id ? table[k] : NULL;
	if (!j || !j->done) {
		pthread_mutex_unlock(&jobs_lock);
		return j ? -EBUSY : -ENOENT;
	}
	memmove(table + k, table + k + 1, (njobs - k - 1) * sizeof(*table));
	njobs--;
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
		n = 0;
		pthread_mutex_lock(&jobs_lock);
		for (size_t k = lower_bound(after + 1); k < njobs && n < 256;
		     k++)
			ids[n++] = table[k]->id;
		pthread_mutex_unlock(&jobs_lock);
		for (size_t i = 0; i < n; i++)
			fn(ctx, ids[i]);
		if (n)
			after = ids[n - 1];
	} while (n == 256);
}

void vhdfs_jobs_destroy(void)
{
	pthread_mutex_lock(&jobs_lock);
	for (size_t k = 0; k < njobs; k++)
		if (table[k]->queued)
			drop_queued(table[k]);
		else if (!finished(table[k]))
			table[k]->cancel = true;
	while (workers > 0)
		pthread_cond_wait(&jobs_cond, &jobs_lock);
	for (size_t k = 0; k < njobs; k++) {
		free(table[k]->command);
		free(table[k]);
	}
	njobs = 0;
	pthread_mutex_unlock(&jobs_lock);
}
