/*
 * critest's nginx stand-in (scripts/make-cri-test-images.sh): a master
 * process that looks like nginx's where the specs look (its command line
 * says "nginx: master process", its name is nginx, /var/run/nginx.pid holds
 * its pid) and serves /usr/share/nginx/html on :80 through a busybox httpd
 * child. SIGTERM, SIGINT and SIGQUIT are passed to the child, and the master
 * exits with it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define TITLE "nginx: master process nginx -g daemon off;"

static pid_t child;

static void pass_on(int sig) {
    if (child > 0)
        kill(child, sig);
}

int main(int argc, char **argv) {
    (void)argc;
    /* nginx rewrites its own argv; exec'ing again under the title is the
     * portable way to the same /proc/PID/cmdline */
    if (strcmp(argv[0], TITLE) != 0) {
        /* by its own path, not /proc/self/exe: the process's name is the
         * file's */
        char self[4096];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n <= 0) {
            perror("nginx stand-in: readlink");
            return 1;
        }
        self[n] = '\0';
        char *again[] = {TITLE, NULL};
        execv(self, again);
        perror("nginx stand-in: exec");
        return 1;
    }
    FILE *pidfile = fopen("/var/run/nginx.pid", "w");
    if (pidfile) {
        fprintf(pidfile, "%d\n", (int)getpid());
        fclose(pidfile);
    }
    struct sigaction passing = {.sa_handler = pass_on};
    sigaction(SIGTERM, &passing, NULL);
    sigaction(SIGINT, &passing, NULL);
    sigaction(SIGQUIT, &passing, NULL);
    child = fork();
    if (child == 0) {
        execl("/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/usr/share/nginx/html", (char *)NULL);
        perror("nginx stand-in: httpd");
        _exit(127);
    }
    int status = 0;
    for (;;) {
        pid_t p = waitpid(-1, &status, 0);
        if (p == child)
            break;
        if (p < 0 && errno != EINTR)
            return 1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
