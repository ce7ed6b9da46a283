// Builds and links the delegate against the first SDK releases' headers (no onAuthFailure,
// Error::NO_ERROR): the point is that this file compiles. It also checks the one behaviour that
// differs: with no agent, the state is UNINITIALIZED with NO_ERROR.
#include <cstdio>

#include "AvsPair/AgentAuthDelegate.h"

using alexaClientSDK::avsCommon::sdkInterfaces::AuthObserverInterface;

// The CMake probes found the first releases' shape in the legacy stand-in (set on the legacy
// delegate library, so seen here too): a stand-in that had grown the current interface would
// fail here rather than quietly stop testing the old one.
static_assert(!AVS_PAIR_SDK_HAS_ON_AUTH_FAILURE, "the legacy stand-in declares onAuthFailure");
static_assert(!AVS_PAIR_SDK_MODERN_ENUMS, "the legacy stand-in has the current enums");

namespace {
struct Seen : AuthObserverInterface {
    State state = State::REFRESHED;
    Error error = Error::UNKNOWN_ERROR;
    void onAuthStateChange(State s, Error e) override {
        state = s;
        error = e;
    }
};
}  // namespace

int main() {
    auto manager = std::make_shared<alexaClientSDK::registrationManager::CustomerDataManager>();
    avsPair::AgentAuthDelegateOptions options;
    options.socketPath = "/nonexistent/avs-pair-legacy.sock";
    auto delegate = avsPair::AgentAuthDelegate::create(manager, options);
    auto seen = std::make_shared<Seen>();
    delegate->addAuthObserver(seen);
    bool ok = delegate->getAuthToken().empty() && seen->state == AuthObserverInterface::State::UNINITIALIZED &&
              seen->error == AuthObserverInterface::Error::NO_ERROR;
    delegate->shutdown();
    std::printf("%s\n", ok ? "ok" : "FAILED");
    return ok ? 0 : 1;
}
