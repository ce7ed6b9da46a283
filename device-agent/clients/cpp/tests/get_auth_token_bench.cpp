// getAuthToken() cost: ns per call from a warm cache (one thread, then 4 threads at once).
// Run against a paired agent:
//   device-agent/clients/testing/harness.sh run -- build/tests/get_auth_token_bench
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "AvsPair/AgentAuthDelegate.h"

using Clock = std::chrono::steady_clock;

int main() {
    const char* socket = std::getenv("AVS_PAIR_SOCKET");
    if (!socket) {
        std::fprintf(stderr, "AVS_PAIR_SOCKET not set (run under clients/testing/harness.sh)\n");
        return 2;
    }
    auto manager = std::make_shared<alexaClientSDK::registrationManager::CustomerDataManager>();
    avsPair::AgentAuthDelegateOptions options;
    options.socketPath = socket;
    auto d = avsPair::AgentAuthDelegate::create(manager, options);
    auto deadline = Clock::now() + std::chrono::seconds(10);
    while (d->getAuthToken().empty()) {
        if (Clock::now() > deadline) {
            std::fprintf(stderr, "no token from the agent in 10 s\n");
            return 1;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    constexpr int N = 2'000'000;
    std::size_t sink = 0;
    for (int round = 0; round < 3; ++round) {
        auto t0 = Clock::now();
        for (int i = 0; i < N; ++i) {
            sink += d->getAuthToken().size();
        }
        double ns = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / N;
        std::printf("getAuthToken: %.1f ns/call (1 thread, %d calls)\n", ns, N);
    }
    std::vector<std::thread> threads;
    std::vector<double> per(4);
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            std::size_t local = 0;
            auto t0 = Clock::now();
            for (int i = 0; i < N / 4; ++i) {
                local += d->getAuthToken().size();
            }
            per[t] = std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / (N / 4);
            sink += local;
        });
    }
    for (auto& th : threads) {
        th.join();
    }
    std::printf("getAuthToken: %.1f %.1f %.1f %.1f ns/call (4 threads at once)\n", per[0], per[1], per[2], per[3]);
    d->shutdown();
    return sink == 0 ? 1 : 0;
}
