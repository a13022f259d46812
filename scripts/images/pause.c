/*
 * The infra process of berth's pod sandbox stand-in (scripts/make-pause-image.sh):
 * it holds the pod's namespaces, exits at SIGINT or SIGTERM, and, as PID 1 of
 * a pod that shares its PID namespace, reaps the orphans it inherits.
 * Kubernetes' pause does the same; this one is berth's own, for tests offline.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void quit(int sig) {
    (void)sig;
    _exit(0);
}

static void reap(int sig) {
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "-v") == 0) {
        static const char v[] = "pause (berth stand-in)\n";
        write(1, v, sizeof v - 1);
        return 0;
    }
    struct sigaction quitting = {.sa_handler = quit};
    struct sigaction reaping = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP | SA_RESTART};
    if (sigaction(SIGINT, &quitting, NULL) < 0 || sigaction(SIGTERM, &quitting, NULL) < 0 ||
        sigaction(SIGCHLD, &reaping, NULL) < 0) {
        return 1;
    }
    for (;;) {
        pause();
    }
}
