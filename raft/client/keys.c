/*
 * keys.c - CURVE key pairs and key files (see keys.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "raft/client/keys.h"

int keys_generate(char pub[KEYS_Z85_LEN + 1], char sec[KEYS_Z85_LEN + 1])
{
	if (!zmq_has("curve"))
		return -ENOTSUP;
	return zmq_curve_keypair(pub, sec) == 0 ? 0 : -zmq_errno();
}

int keys_public(const char *sec, char pub[KEYS_Z85_LEN + 1])
{
	uint8_t bin[32];

	if (strlen(sec) != KEYS_Z85_LEN || zmq_z85_decode(bin, sec) == NULL)
		return -EINVAL;
	explicit_bzero(bin, sizeof(bin));
	return zmq_curve_public(pub, sec) == 0 ? 0 : -EINVAL;
}

int keys_write_secret(const char *path, const char *sec, char *err,
    size_t errlen)
{
	char line[KEYS_Z85_LEN + 2];
	int fd, rv = 0;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		rv = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return rv;
	}
	snprintf(line, sizeof(line), "%s\n", sec);
	if (write(fd, line, strlen(line)) != (ssize_t)strlen(line) ||
	    fsync(fd) != 0)
		rv = errno ? -errno : -EIO;
	if (close(fd) != 0 && rv == 0)
		rv = -errno;
	explicit_bzero(line, sizeof(line));
	if (rv != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(-rv));
		unlink(path);
	}
	return rv;
}

int keys_read_secret(const char *path, char sec[KEYS_Z85_LEN + 1], char *err,
    size_t errlen)
{
	char buf[KEYS_Z85_LEN + 4], pub[KEYS_Z85_LEN + 1];
	struct stat st;
	ssize_t n;
	int fd, rv = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rv = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return rv;
	}
	if (fstat(fd, &st) != 0) {
		rv = -errno;
	} else if ((st.st_mode & 077) != 0) {
		snprintf(err, errlen,
		    "%s: secret key readable by others (mode "
		    "%03o): chmod 600 it",
		    path, (unsigned)(st.st_mode & 0777));
		close(fd);
		return -EPERM;
	}
	n = rv == 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (rv == 0 && n < 0)
		rv = -errno;
	close(fd);
	if (rv != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(-rv));
		return rv;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (keys_public(buf, pub) != 0) {
		snprintf(err, errlen,
		    "%s: not a 40-character Z85 CURVE secret "
		    "key",
		    path);
		explicit_bzero(buf, sizeof(buf));
		return -EINVAL;
	}
	memcpy(sec, buf, KEYS_Z85_LEN + 1);
	explicit_bzero(buf, sizeof(buf));
	return 0;
}

void keys_dir_of(const char *path, char *out, size_t cap)
{
	const char *slash = strrchr(path, '/');

	if (slash == NULL)
		snprintf(out, cap, ".");
	else if (slash == path)
		snprintf(out, cap, "/");
	else
		snprintf(out, cap, "%.*s", (int)(slash - path), path);
}

/* Is the public key of @sec one of @c's credentials? */
static bool listed(const struct cluster *c, const char *sec)
{
	char pub[KEYS_Z85_LEN + 1];

	if (keys_public(sec, pub) != 0)
		return false;
	for (uint32_t i = 0; i < c->n_creds; i++)
		if (strcmp(c->creds[i].key, pub) == 0)
			return true;
	return false;
}

int keys_load_credential(struct cluster *c, const char *cluster_path,
    const char *explicit_path, bool admin, char *err, size_t errlen)
{
	char dir[4096], path[4200];
	const char *env = getenv("RAFTKV_CREDENTIAL");
	const char *names[2] = { admin ? "admin.key" : "client.key",
		admin ? "client.key" : "admin.key" };
	int rv;

	c->cred_secret[0] = '\0';
	if (!c->curve)
		return 0;
	if (explicit_path == NULL && env != NULL && env[0] != '\0')
		explicit_path = env;
	if (explicit_path != NULL) {
		rv = keys_read_secret(explicit_path, c->cred_secret, err,
		    errlen);
		path[0] = '\0';
		snprintf(path, sizeof(path), "%s", explicit_path);
	} else {
		keys_dir_of(cluster_path, dir, sizeof(dir));
		rv = -ENOENT;
		for (int i = 0; i < 2 && rv == -ENOENT; i++) {
			snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
			rv = keys_read_secret(path, c->cred_secret, err,
			    errlen);
		}
		if (rv == -ENOENT)
			snprintf(err, errlen,
			    "%s uses CURVE keys but no client "
			    "credential was found (%s/client.key, "
			    "%s/admin.key, "
			    "$RAFTKV_CREDENTIAL)",
			    cluster_path, dir, dir);
	}
	if (rv == 0 && !listed(c, c->cred_secret)) {
		snprintf(err, errlen,
		    "%s: not one of the credentials listed in "
		    "%s",
		    path, cluster_path);
		rv = -EPERM;
	}
	if (rv != 0)
		explicit_bzero(c->cred_secret, sizeof(c->cred_secret));
	return rv;
}

/* Write @c as a cluster file at @path (new file, 0644). */
static int write_cluster_file(const char *path, const struct cluster *c,
    char *err, size_t errlen)
{
	FILE *f;
	int fd, rv = 0;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
		rv = -errno;
		if (fd >= 0)
			close(fd);
		snprintf(err, errlen, "%s: %s", path, strerror(-rv));
		return rv;
	}
	fprintf(f,
	    "# raftkv cluster file (raftkv.conf(5)), written by raftkv "
	    "init.\n# Secret keys: member<ID>.key, client.key, admin.key in "
	    "this directory.\n");
	fprintf(f, "cluster %" PRIx64 "\n", c->id);
	for (uint32_t i = 0; i < c->n; i++)
		fprintf(f, "member %" PRIu64 " peer=%s client=%s key=%s\n",
		    c->members[i].id, c->members[i].peer, c->members[i].client,
		    c->members[i].key);
	for (uint32_t i = 0; i < c->n_creds; i++)
		fprintf(f, "credential %s key=%s\n",
		    c->creds[i].role == CLUSTER_ADMIN ? "admin" : "client",
		    c->creds[i].key);
	if (c->quota != 0)
		fprintf(f, "quota %" PRIu64 "\n", c->quota);
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		rv = -errno;
	if (fclose(f) != 0 && rv == 0)
		rv = -errno;
	if (rv != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(-rv));
		unlink(path);
	}
	return rv;
}

/* Generate a pair; write the secret to @dir/@name; the public to @pub. */
static int new_secret(const char *dir, const char *name,
    char pub[KEYS_Z85_LEN + 1], char *err, size_t errlen)
{
	char sec[KEYS_Z85_LEN + 1], path[4200];
	int rv = keys_generate(pub, sec);

	if (rv != 0) {
		snprintf(err, errlen, "cannot generate a CURVE key pair: %s",
		    strerror(-rv));
		return rv;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	rv = keys_write_secret(path, sec, err, errlen);
	explicit_bzero(sec, sizeof(sec));
	return rv;
}

int keys_init_cluster(const char *dir, struct cluster *c, char *err,
    size_t errlen)
{
	char name[64], path[4200];
	int rv = 0;

	if (c->n == 0 || c->id == 0) {
		snprintf(err, errlen, "no members or no cluster id");
		return -EINVAL;
	}
	snprintf(path, sizeof(path), "%s/cluster.conf", dir);
	if (access(path, F_OK) == 0) {
		snprintf(err, errlen, "%s exists: not overwriting a cluster",
		    path);
		return -EEXIST;
	}
	for (uint32_t i = 0; rv == 0 && i < c->n; i++) {
		snprintf(name, sizeof(name), "member%" PRIu64 ".key",
		    c->members[i].id);
		rv = new_secret(dir, name, c->members[i].key, err, errlen);
	}
	c->n_creds = 2;
	c->creds[0].role = CLUSTER_CLIENT;
	c->creds[1].role = CLUSTER_ADMIN;
	if (rv == 0)
		rv = new_secret(dir, "client.key", c->creds[0].key, err,
		    errlen);
	if (rv == 0)
		rv = new_secret(dir, "admin.key", c->creds[1].key, err, errlen);
	if (rv == 0)
		rv = write_cluster_file(path, c, err, errlen);
	c->curve = rv == 0;
	return rv;
}
