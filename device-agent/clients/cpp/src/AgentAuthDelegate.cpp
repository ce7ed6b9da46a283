// AgentAuthDelegate: see include/AvsPair/AgentAuthDelegate.h for what and why.
#include "AvsPair/AgentAuthDelegate.h"

#include <algorithm>
#include <cerrno>
#include <optional>
#include <random>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <rapidjson/document.h>

#include "AvsPair/LocalApi.h"

// Set by CMake: 1 when the SDK's enums are the current ones (State::AUTHORIZING,
// Error::SUCCESS … INVALID_CBL_CLIENT_ID); 0 for the first releases (Error::NO_ERROR and eight
// errors), where the agent's newer values are mapped to the nearest old one.
#ifndef AVS_PAIR_SDK_MODERN_ENUMS
#define AVS_PAIR_SDK_MODERN_ENUMS 1
#endif

namespace avsPair {

using alexaClientSDK::avsCommon::sdkInterfaces::AuthObserverInterface;
using State = AuthObserverInterface::State;
using Error = AuthObserverInterface::Error;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

/// How long to keep re-fetching after an auth failure before giving up on a new token.
constexpr auto CHASE_FOR = std::chrono::seconds(60);
/// Re-fetch interval while chasing.
constexpr milliseconds CHASE_POLL{100};
/// Most queued auth-failure reports (one per distinct token suffices).
constexpr std::size_t MAX_FAILED_TOKENS = 8;

Error noError() {
#if AVS_PAIR_SDK_MODERN_ENUMS
    return Error::SUCCESS;
#else
    return Error::NO_ERROR;
#endif
}

std::optional<State> mapState(const std::string& s) {
    if (s == "UNINITIALIZED") return State::UNINITIALIZED;
    if (s == "REFRESHED") return State::REFRESHED;
    if (s == "EXPIRED") return State::EXPIRED;
    if (s == "UNRECOVERABLE_ERROR") return State::UNRECOVERABLE_ERROR;
#if AVS_PAIR_SDK_MODERN_ENUMS
    if (s == "AUTHORIZING") return State::AUTHORIZING;
#else
    if (s == "AUTHORIZING") return State::UNINITIALIZED;
#endif
    return std::nullopt;  // a state this build does not know: ignored
}

Error mapError(const std::string& e) {
    if (e == "SUCCESS") return noError();
    if (e == "UNKNOWN_ERROR") return Error::UNKNOWN_ERROR;
    if (e == "AUTHORIZATION_FAILED") return Error::AUTHORIZATION_FAILED;
    if (e == "UNAUTHORIZED_CLIENT") return Error::UNAUTHORIZED_CLIENT;
    if (e == "SERVER_ERROR") return Error::SERVER_ERROR;
    if (e == "INVALID_REQUEST") return Error::INVALID_REQUEST;
    if (e == "AUTHORIZATION_EXPIRED") return Error::AUTHORIZATION_EXPIRED;
    if (e == "UNSUPPORTED_GRANT_TYPE") return Error::UNSUPPORTED_GRANT_TYPE;
#if AVS_PAIR_SDK_MODERN_ENUMS
    if (e == "INVALID_VALUE") return Error::INVALID_VALUE;
    if (e == "INVALID_CODE_PAIR") return Error::INVALID_CODE_PAIR;
    if (e == "AUTHORIZATION_PENDING") return Error::AUTHORIZATION_PENDING;
    if (e == "SLOW_DOWN") return Error::SLOW_DOWN;
    if (e == "INTERNAL_ERROR") return Error::INTERNAL_ERROR;
    if (e == "INVALID_CBL_CLIENT_ID") return Error::INVALID_CBL_CLIENT_ID;
#else
    if (e == "INVALID_VALUE") return Error::INVALID_REQUEST;
#endif
    return Error::UNKNOWN_ERROR;
}

/// The string member `key` of a JSON object, if it is one.
std::optional<std::string> stringField(const rapidjson::Document& d, const char* key) {
    auto it = d.FindMember(key);
    if (it == d.MemberEnd() || !it->value.IsString()) {
        return std::nullopt;
    }
    return std::string(it->value.GetString(), it->value.GetStringLength());
}

/// Parses one answer line; non-objects and lines without a string "type" are rejected.
bool parseAnswer(const std::string& line, rapidjson::Document& d, std::string& type) {
    d.Parse(line.data(), line.size());
    if (d.HasParseError() || !d.IsObject()) {
        return false;
    }
    auto t = stringField(d, "type");
    if (!t) {
        return false;
    }
    type = *t;
    return true;
}

}  // namespace

std::shared_ptr<AgentAuthDelegate> AgentAuthDelegate::create(
    std::shared_ptr<alexaClientSDK::registrationManager::CustomerDataManager> customerDataManager,
    AgentAuthDelegateOptions options) {
    std::shared_ptr<AgentAuthDelegate> d(new AgentAuthDelegate(std::move(customerDataManager), std::move(options)));
    if (d->m_wakeFds[0] < 0) {
        return nullptr;
    }
    d->m_thread = std::thread([raw = d.get()] { raw->run(); });
    return d;
}

AgentAuthDelegate::AgentAuthDelegate(
    std::shared_ptr<alexaClientSDK::registrationManager::CustomerDataManager> customerDataManager,
    AgentAuthDelegateOptions options)
        : CustomerDataHandler(std::move(customerDataManager)),
          m_options(std::move(options)),
          m_state(State::UNINITIALIZED),
          m_error(noError()) {
    if (::pipe2(m_wakeFds, O_NONBLOCK | O_CLOEXEC) != 0) {
        m_wakeFds[0] = m_wakeFds[1] = -1;
    }
}

AgentAuthDelegate::~AgentAuthDelegate() {
    shutdown();
    for (int& fd : m_wakeFds) {
        if (fd >= 0) {
            ::close(fd);
            fd = -1;
        }
    }
    localApi::secureClear(m_token);
    for (auto& t : m_failedTokens) {
        localApi::secureClear(t);
    }
    for (auto& t : m_pendingReports) {
        localApi::secureClear(t);
    }
}

void AgentAuthDelegate::shutdown() {
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        m_stop = true;
    }
    wake();
    if (m_thread.joinable() && m_thread.get_id() != std::this_thread::get_id()) {
        m_thread.join();
    }
}

bool AgentAuthDelegate::isConnected() const {
    return m_connected.load(std::memory_order_acquire);
}

void AgentAuthDelegate::addAuthObserver(std::shared_ptr<AuthObserverInterface> observer) {
    if (!observer) {
        return;
    }
    std::lock_guard<std::recursive_mutex> order(m_notifyMutex);
    State state;
    Error error;
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        if (std::find(m_observers.begin(), m_observers.end(), observer) != m_observers.end()) {
            return;
        }
        m_observers.push_back(observer);
        state = m_state;
        error = m_error;
    }
    // The SDK's contract: the observer hears the current state during this call.
    observer->onAuthStateChange(state, error);
}

void AgentAuthDelegate::removeAuthObserver(std::shared_ptr<AuthObserverInterface> observer) {
    std::lock_guard<std::mutex> lock(m_mutex);
    m_observers.erase(std::remove(m_observers.begin(), m_observers.end(), observer), m_observers.end());
}

std::string AgentAuthDelegate::getAuthToken() {
    std::lock_guard<std::mutex> lock(m_mutex);
    if (m_token.empty() || Clock::now() >= m_expiresAt) {
        return std::string();
    }
    return m_token;
}

void AgentAuthDelegate::onAuthFailure(const std::string& refused) {
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        // An empty token means "the current one" (the agent reads it so too).
        const std::string& token = refused.empty() ? m_token : refused;
        if (std::find(m_failedTokens.begin(), m_failedTokens.end(), token) == m_failedTokens.end()) {
            if (m_failedTokens.size() >= MAX_FAILED_TOKENS) {
                localApi::secureClear(m_failedTokens.front());
                m_failedTokens.pop_front();
            }
            m_failedTokens.push_back(token);
            m_pendingReports.push_back(token);
        }
        m_chaseUntil = Clock::now() + CHASE_FOR;
    }
    wake();
}

void AgentAuthDelegate::clearData() {
    // Called by the SDK's logout with its CustomerDataManager locked: bounded, and touches
    // nothing of the SDK's.
    auto answer = localApi::request(m_options.socketPath, localApi::opLine("reset"), m_options.requestTimeout);
    if (answer) {
        localApi::secureClear(*answer);
    }
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        localApi::secureClear(m_token);
        for (auto& t : m_failedTokens) {
            localApi::secureClear(t);
        }
        m_failedTokens.clear();
        for (auto& t : m_pendingReports) {
            localApi::secureClear(t);
        }
        m_pendingReports.clear();
        m_chaseUntil = Clock::time_point();
    }
    setState(State::UNINITIALIZED, noError(), false);
}

void AgentAuthDelegate::wake() {
    if (m_wakeFds[1] >= 0) {
        char b = 1;
        // Full pipe = a wake-up is already pending; nothing else to do.
        (void)!::write(m_wakeFds[1], &b, 1);
    }
}

bool AgentAuthDelegate::sleepFor(milliseconds d) {
    pollfd p{m_wakeFds[0], POLLIN, 0};
    ::poll(&p, 1, static_cast<int>(d.count()));
    char buf[64];
    while (::read(m_wakeFds[0], buf, sizeof(buf)) > 0) {
    }
    std::lock_guard<std::mutex> lock(m_mutex);
    return !m_stop;
}

void AgentAuthDelegate::run() {
    std::mt19937 rng{std::random_device{}()};
    std::uniform_real_distribution<double> jitter(0.5, 1.5);
    milliseconds backoff = m_options.minBackoff;
    for (;;) {
        {
            std::lock_guard<std::mutex> lock(m_mutex);
            if (m_stop) {
                return;
            }
        }
        bool heard = false;
        if (auto conn = localApi::Connection::open(m_options.socketPath)) {
            if (conn->sendLine(localApi::opLine("subscribe"), m_options.requestTimeout)) {
                m_connected.store(true, std::memory_order_release);
                heard = runConnection(*conn);
                m_connected.store(false, std::memory_order_release);
            }
        }
        if (heard) {
            backoff = m_options.minBackoff;
        }
        checkExpiry();
        auto delay = milliseconds(static_cast<long long>(static_cast<double>(backoff.count()) * jitter(rng)));
        if (!sleepFor(delay)) {
            return;
        }
        backoff = std::min(backoff * 2, m_options.maxBackoff);
    }
}

bool AgentAuthDelegate::runConnection(localApi::Connection& conn) {
    bool heard = false;
    bool first = true;
    auto nextRecheck = Clock::now() + m_options.tokenRecheck;
    for (;;) {
        Clock::time_point chaseUntil;
        Clock::time_point expiresAt = Clock::time_point::max();
        bool refreshed;
        bool pending;
        {
            std::lock_guard<std::mutex> lock(m_mutex);
            if (m_stop) {
                return heard;
            }
            chaseUntil = m_chaseUntil;
            if (!m_token.empty()) {
                expiresAt = m_expiresAt;
            }
            refreshed = m_state == State::REFRESHED;
            pending = !m_pendingReports.empty();
        }
        if (pending) {
            drainAuthFailures();
        }
        auto now = Clock::now();
        const bool chasing = now < chaseUntil;
        if (refreshed && (chasing || now >= nextRecheck)) {
            // The agent rotates tokens without a state change (and refreshes after an auth
            // failure while staying REFRESHED): ask for the current one.
            fetchToken();
            nextRecheck = now + m_options.tokenRecheck;
        }
        checkExpiry();
        auto wakeAt = std::min(nextRecheck, expiresAt);
        if (chasing) {
            wakeAt = std::min(wakeAt, now + CHASE_POLL);
        }
        auto timeout = std::chrono::duration_cast<milliseconds>(wakeAt - now);
        timeout = std::clamp(timeout, milliseconds(1), milliseconds(60000));
        std::string line;
        auto r = conn.readLine(line, timeout, m_wakeFds[0]);
        char buf[64];
        while (::read(m_wakeFds[0], buf, sizeof(buf)) > 0) {
        }
        if (r == localApi::Connection::Read::LINE) {
            heard = true;
            rapidjson::Document d;
            std::string type;
            if (parseAnswer(line, d, type) && type == "auth_state") {
                auto state = stringField(d, "state");
                auto error = stringField(d, "error");
                if (state) {
                    // The first state after (re)connecting is always delivered: observers see
                    // the agent come back.
                    onAgentState(*state, error.value_or("SUCCESS"), first);
                    first = false;
                }
            }
            localApi::secureClear(line);
        } else if (r != localApi::Connection::Read::TIMEOUT) {
            return heard;
        }
    }
}

void AgentAuthDelegate::onAgentState(const std::string& state, const std::string& error, bool force) {
    auto s = mapState(state);
    if (!s) {
        return;
    }
    Error e = mapError(error);
    if (*s == State::REFRESHED) {
        fetchToken();
    } else {
        std::lock_guard<std::mutex> lock(m_mutex);
        localApi::secureClear(m_token);
    }
    setState(*s, e, force);
}

void AgentAuthDelegate::fetchToken() {
    auto answer = localApi::request(m_options.socketPath, localApi::opLine("token"), m_options.requestTimeout);
    if (!answer) {
        return;  // keep what we have; the next recheck or state change tries again
    }
    rapidjson::Document d;
    std::string type;
    bool ok = parseAnswer(*answer, d, type);
    localApi::secureClear(*answer);
    if (!ok) {
        return;
    }
    if (type != "token") {
        return;  // "error": no valid token right now; the state stream says why
    }
    auto token = stringField(d, "access_token");
    auto exp = d.FindMember("expires_in_secs");
    if (!token || token->empty() || exp == d.MemberEnd() || !exp->value.IsUint64()) {
        return;
    }
    auto expiresAt = Clock::now() + std::chrono::seconds(exp->value.GetUint64());
    // Wipe the parsed document's copy.
    if (auto it = d.FindMember("access_token"); it != d.MemberEnd()) {
        std::fill_n(const_cast<char*>(it->value.GetString()), it->value.GetStringLength(), '\0');
    }
    std::lock_guard<std::mutex> lock(m_mutex);
    if (std::find(m_failedTokens.begin(), m_failedTokens.end(), *token) == m_failedTokens.end()) {
        // A token nobody reported as refused: the chase (if any) is over.
        m_chaseUntil = Clock::time_point();
    }
    localApi::secureClear(m_token);
    m_token = std::move(*token);
    m_expiresAt = expiresAt;
}

void AgentAuthDelegate::drainAuthFailures() {
    std::deque<std::string> reports;
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        reports.swap(m_pendingReports);
    }
    std::deque<std::string> unsent;
    for (auto& token : reports) {
        std::string line = localApi::authFailureLine(token);
        auto answer = localApi::request(m_options.socketPath, line, m_options.requestTimeout);
        localApi::secureClear(line);
        if (answer) {
            localApi::secureClear(*answer);
            localApi::secureClear(token);
        } else {
            unsent.push_back(std::move(token));  // the agent is away: again on the next round
        }
    }
    if (!unsent.empty()) {
        std::lock_guard<std::mutex> lock(m_mutex);
        if (Clock::now() < m_chaseUntil) {
            for (auto& t : unsent) {
                m_pendingReports.push_back(std::move(t));
            }
        } else {
            for (auto& t : unsent) {
                localApi::secureClear(t);
            }
        }
    }
}

void AgentAuthDelegate::checkExpiry() {
    bool expired = false;
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        if (!m_token.empty() && Clock::now() >= m_expiresAt) {
            localApi::secureClear(m_token);
            expired = m_state == State::REFRESHED;
        }
    }
    if (expired) {
        setState(State::EXPIRED, noError(), false);
    }
}

void AgentAuthDelegate::setState(State state, Error error, bool force) {
    std::lock_guard<std::recursive_mutex> order(m_notifyMutex);
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        if (!force && state == m_state && error == m_error) {
            return;
        }
        m_state = state;
        m_error = error;
    }
    notifyAll(state, error);
}

void AgentAuthDelegate::notifyAll(State state, Error error) {
    std::vector<std::shared_ptr<AuthObserverInterface>> observers;
    {
        std::lock_guard<std::mutex> lock(m_mutex);
        observers = m_observers;
    }
    for (auto& o : observers) {
        o->onAuthStateChange(state, error);
    }
}

}  // namespace avsPair
