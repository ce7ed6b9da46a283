/*
 * AgentAuthDelegate: the AVS Device SDK's AuthDelegateInterface, served by avs-device-agent.
 *
 * The agent (on the same speaker) owns the Login with Amazon account: it paired with the
 * companion app, stores the refresh token and refreshes the access token before it expires. This
 * class is what an SDK-based app passes wherever the SDK wants an AuthDelegateInterface
 * (MessageRouter, AVSConnectionManager, CapabilitiesDelegate, …) instead of the SDK's
 * CBLAuthDelegate. It speaks the agent's local API (line-delimited JSON over a Unix socket):
 *
 *   - a background thread holds a `subscribe` connection, so observers get the agent's state and
 *     error (the SDK's own enums) as the agent reports them, and re-fetches the token (`token`)
 *     whenever the state says REFRESHED, every `tokenRecheck` while it stays so (the agent
 *     rotates tokens without a state change), and after an auth failure until a new token
 *     arrives;
 *   - getAuthToken() only reads that cache (a mutex held for a string copy; no I/O), and returns
 *     "" once the cached token's lifetime is over, as the SDK's contract asks;
 *   - onAuthFailure(token) queues an `auth_failure` report (the agent refreshes once, however
 *     many report the same token); clearData() sends `reset` (the SDK's logout);
 *   - when the agent goes away (restart, upgrade) the thread reconnects with exponential backoff
 *     and jitter; observers get the state again once it is back.
 *
 * Locking: no thread ever does socket I/O while holding a lock that SDK code can take through
 * this class. Observers are called with no lock of ours held except m_notifyMutex (recursive,
 * taken only to keep each observer's notifications in order); an observer may call back into
 * any method here, but must not drop the last reference to the delegate from inside its
 * callback (keep a weak_ptr there): the destructor joins the thread the callback runs on.
 */
#ifndef AVS_PAIR_AGENT_AUTH_DELEGATE_H_
#define AVS_PAIR_AGENT_AUTH_DELEGATE_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <AVSCommon/SDKInterfaces/AuthDelegateInterface.h>
#include <AVSCommon/SDKInterfaces/AuthObserverInterface.h>
#include <RegistrationManager/CustomerDataHandler.h>
#include <RegistrationManager/CustomerDataManager.h>

#include "AvsPair/LocalApi.h"

// Set by CMake (check_cxx_source_compiles against the SDK's headers): 1 when the SDK's
// AuthDelegateInterface declares onAuthFailure (later releases); older ones build without it.
#ifndef AVS_PAIR_SDK_HAS_ON_AUTH_FAILURE
#define AVS_PAIR_SDK_HAS_ON_AUTH_FAILURE 1
#endif
#if AVS_PAIR_SDK_HAS_ON_AUTH_FAILURE
#define AVS_PAIR_ON_AUTH_FAILURE_OVERRIDE override
#else
#define AVS_PAIR_ON_AUTH_FAILURE_OVERRIDE
#endif

namespace avsPair {

/// Where the agent is and how patient to be with it.
struct AgentAuthDelegateOptions {
    /// The agent's local API socket (the systemd unit's path; `--socket-path`).
    std::string socketPath = "/run/avs-device-agent/agent.sock";
    /// Longest wait for one request/answer on a short connection (token, auth_failure, reset).
    std::chrono::milliseconds requestTimeout{5000};
    /// First reconnect delay after the agent went away; doubles up to maxBackoff (×0.5–1.5 jitter).
    std::chrono::milliseconds minBackoff{100};
    /// Longest reconnect delay.
    std::chrono::milliseconds maxBackoff{5000};
    /// While REFRESHED, how often to ask whether the agent rotated the token.
    std::chrono::milliseconds tokenRecheck{30000};
};

class AgentAuthDelegate
        : public alexaClientSDK::avsCommon::sdkInterfaces::AuthDelegateInterface
        , public alexaClientSDK::registrationManager::CustomerDataHandler {
public:
    using AuthObserverInterface = alexaClientSDK::avsCommon::sdkInterfaces::AuthObserverInterface;

    /**
     * Creates the delegate and starts its background thread. Never blocks on the agent: the
     * state is UNINITIALIZED until the agent answers.
     *
     * @param customerDataManager The SDK's CustomerDataManager (logout calls clearData()).
     */
    static std::shared_ptr<AgentAuthDelegate> create(
        std::shared_ptr<alexaClientSDK::registrationManager::CustomerDataManager> customerDataManager,
        AgentAuthDelegateOptions options = AgentAuthDelegateOptions());

    ~AgentAuthDelegate() override;
    AgentAuthDelegate(const AgentAuthDelegate&) = delete;
    AgentAuthDelegate& operator=(const AgentAuthDelegate&) = delete;

    /// @name AuthDelegateInterface
    /// @{
    void addAuthObserver(std::shared_ptr<AuthObserverInterface> observer) override;
    void removeAuthObserver(std::shared_ptr<AuthObserverInterface> observer) override;
    std::string getAuthToken() override;
    void onAuthFailure(const std::string& token) AVS_PAIR_ON_AUTH_FAILURE_OVERRIDE;
    /// @}

    /// @name CustomerDataHandler
    /// @{
    /// Forgets the account on the agent (`reset`; bounded by requestTimeout) and drops the cache.
    void clearData() override;
    /// @}

    /// Stops the background thread (also done by the destructor). Idempotent.
    void shutdown();

    /// True while the `subscribe` connection is up (for diagnostics and tests).
    bool isConnected() const;

private:
    AgentAuthDelegate(
        std::shared_ptr<alexaClientSDK::registrationManager::CustomerDataManager> customerDataManager,
        AgentAuthDelegateOptions options);

    void run();
    bool runConnection(localApi::Connection& conn);
    void onAgentState(const std::string& state, const std::string& error, bool force);
    void fetchToken();
    void drainAuthFailures();
    void checkExpiry();
    void setState(AuthObserverInterface::State state, AuthObserverInterface::Error error, bool force);
    void notifyAll(AuthObserverInterface::State state, AuthObserverInterface::Error error);
    void wake();
    bool sleepFor(std::chrono::milliseconds d);

    const AgentAuthDelegateOptions m_options;

    /// Guards everything below it up to m_notifyMutex. Never held during I/O or callbacks.
    mutable std::mutex m_mutex;
    std::string m_token;
    std::chrono::steady_clock::time_point m_expiresAt;
    AuthObserverInterface::State m_state;
    AuthObserverInterface::Error m_error;
    std::vector<std::shared_ptr<AuthObserverInterface>> m_observers;
    /// Tokens reported as refused (recent ones), and reports not yet sent to the agent.
    std::deque<std::string> m_failedTokens;
    std::deque<std::string> m_pendingReports;
    /// When the failed token is still served, re-fetch until this time.
    std::chrono::steady_clock::time_point m_chaseUntil;
    bool m_stop = false;

    /// Serializes observer notifications (recursive: an observer may add/remove observers).
    std::recursive_mutex m_notifyMutex;

    std::atomic<bool> m_connected{false};
    int m_wakeFds[2] = {-1, -1};
    std::thread m_thread;
};

}  // namespace avsPair

#endif  // AVS_PAIR_AGENT_AUTH_DELEGATE_H_
