// Package deploy holds the files that run recommendation-api in production
// (Kubernetes manifests under kubernetes/, the Prometheus configuration and
// the placeholder token file of docker-compose.yml) and the tests that check
// them against each other, against the Dockerfile and against the server's
// real REST handler. It has no Go code of its own.
package deploy
