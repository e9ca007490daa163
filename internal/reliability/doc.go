// Package reliability holds the checks that run the real server binary as a
// child process and try to break it: the crash loop (CrashLoop: a random
// registry change, SIGKILL at a random moment, the registry file checked
// offline, a restart) and the soak (Soak: fixed-rate Predict over gRPC and
// REST with tokens and TLS while versions are swapped, jobs train and the
// process is killed and restarted). The commands under cmd/ run them
// (`make crash`, `make soak`); a short crash loop is part of the tests.
//
// Everything listens on loopback only and every loop is bounded in count
// and time. The package is a client of the server: it speaks gRPC and REST
// to it and opens the registry file through package registry only while
// the server process is down.
package reliability
