/*
 * The agent's local API, client side: one JSON object per line each way over a Unix socket.
 * Requests carry "op" (token, status, subscribe, auth_failure, reset, …), answers "type". This
 * is only the transport (connect, bounded line reads with deadlines, request builders); the
 * JSON answers are parsed by the caller, which must ignore fields it does not know (the agent
 * may add some, e.g. an error "kind").
 */
#ifndef AVS_PAIR_LOCAL_API_H_
#define AVS_PAIR_LOCAL_API_H_

#include <chrono>
#include <optional>
#include <string>

namespace avsPair {
namespace localApi {

/// Longest line either side sends (the agent's own cap).
constexpr std::size_t MAX_LINE = 16 * 1024;

/// Overwrites a string's bytes before it is freed (tokens are secrets).
void secureClear(std::string& s);

/// One connection to the agent (closed on destruction).
class Connection {
public:
    /// Connects (Unix sockets connect at once or fail). Empty when the agent is not there.
    static std::optional<Connection> open(const std::string& socketPath);

    Connection(Connection&& other) noexcept;
    Connection& operator=(Connection&& other) noexcept;
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;
    ~Connection();

    /// Sends one line (a '\n' is appended); false on error or after `timeout`.
    bool sendLine(const std::string& line, std::chrono::milliseconds timeout);

    enum class Read { LINE, TIMEOUT, CLOSED, ERROR };
    /// Reads the next line (without '\n') into `out`, waiting at most `timeout`; also returns
    /// (TIMEOUT) when `wakeFd` becomes readable, if given. Lines over MAX_LINE are an ERROR.
    Read readLine(std::string& out, std::chrono::milliseconds timeout, int wakeFd = -1);

    int fd() const { return m_fd; }

private:
    explicit Connection(int fd) : m_fd(fd) {}
    int m_fd = -1;
    std::string m_buffer;
};

/// Sends `line` on a fresh connection and returns the first answer line, or empty on any
/// failure (no agent, timeout, oversize answer).
std::optional<std::string> request(
    const std::string& socketPath,
    const std::string& line,
    std::chrono::milliseconds timeout);

/// `{"op":"<op>"}` for ops without arguments.
std::string opLine(const char* op);
/// `{"op":"auth_failure","token":"…"}`, JSON-escaped.
std::string authFailureLine(const std::string& token);

}  // namespace localApi
}  // namespace avsPair

#endif  // AVS_PAIR_LOCAL_API_H_
