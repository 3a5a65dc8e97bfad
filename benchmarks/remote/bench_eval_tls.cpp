// bench_eval with TLS compiled in: the same program as benchmarks/eval/bench_eval.cpp (one source, not a copy), plus
// the header that registers TLS, so that DOCKER_HOST=tcp://... with DOCKER_TLS_VERIFY/DOCKER_CERT_PATH works as it
// does for the docker CLI. ssh:// needs nothing more. Built and run by benchmarks/remote/run.
#include <berth/transport/tls.hpp>

#include "../eval/bench_eval.cpp"
