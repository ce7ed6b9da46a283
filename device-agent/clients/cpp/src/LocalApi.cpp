// The agent's local API transport: see include/AvsPair/LocalApi.h.
#include "AvsPair/LocalApi.h"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace avsPair {
namespace localApi {

using Clock = std::chrono::steady_clock;

void secureClear(std::string& s) {
    volatile char* p = s.empty() ? nullptr : &s[0];
    for (std::size_t i = 0; i < s.size(); ++i) {
        p[i] = 0;
    }
    s.clear();
}

std::optional<Connection> Connection::open(const std::string& socketPath) {
    sockaddr_un addr{};
    if (socketPath.size() >= sizeof(addr.sun_path)) {
        return std::nullopt;
    }
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, socketPath.c_str(), socketPath.size() + 1);
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        return std::nullopt;
    }
    // A non-blocking connect on a Unix socket either completes or fails at once (EAGAIN when
    // the agent's backlog is full: treated as "not there", the caller retries later).
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
        ::close(fd);
        return std::nullopt;
    }
    return Connection(fd);
}

Connection::Connection(Connection&& other) noexcept : m_fd(other.m_fd), m_buffer(std::move(other.m_buffer)) {
    other.m_fd = -1;
}

Connection& Connection::operator=(Connection&& other) noexcept {
    if (this != &other) {
        if (m_fd >= 0) {
            ::close(m_fd);
        }
        secureClear(m_buffer);
        m_fd = other.m_fd;
        m_buffer = std::move(other.m_buffer);
        other.m_fd = -1;
    }
    return *this;
}

Connection::~Connection() {
    if (m_fd >= 0) {
        ::close(m_fd);
    }
    secureClear(m_buffer);
}

static int remainingMs(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    return left < 0 ? 0 : static_cast<int>(left);
}

bool Connection::sendLine(const std::string& line, std::chrono::milliseconds timeout) {
    std::string data = line + "\n";
    const auto deadline = Clock::now() + timeout;
    std::size_t sent = 0;
    bool ok = true;
    while (sent < data.size()) {
        ssize_t n = ::send(m_fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            pollfd p{m_fd, POLLOUT, 0};
            int left = remainingMs(deadline);
            if (left == 0 || ::poll(&p, 1, left) <= 0) {
                ok = false;
                break;
            }
            continue;
        }
        ok = false;
        break;
    }
    secureClear(data);
    return ok;
}

Connection::Read Connection::readLine(std::string& out, std::chrono::milliseconds timeout, int wakeFd) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        auto nl = m_buffer.find('\n');
        if (nl != std::string::npos) {
            if (nl > MAX_LINE) {
                return Read::ERROR;
            }
            out.assign(m_buffer, 0, nl);
            // Shift the rest down in place, then wipe the tail we no longer use.
            std::size_t rest = m_buffer.size() - (nl + 1);
            std::memmove(&m_buffer[0], m_buffer.data() + nl + 1, rest);
            std::memset(&m_buffer[rest], 0, m_buffer.size() - rest);
            m_buffer.resize(rest);
            return Read::LINE;
        }
        if (m_buffer.size() > MAX_LINE) {
            return Read::ERROR;
        }
        pollfd fds[2] = {{m_fd, POLLIN, 0}, {wakeFd, POLLIN, 0}};
        int left = remainingMs(deadline);
        if (left == 0) {
            return Read::TIMEOUT;
        }
        int r = ::poll(fds, wakeFd >= 0 ? 2 : 1, left);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            return Read::ERROR;
        }
        if (r == 0) {
            return Read::TIMEOUT;
        }
        if (wakeFd >= 0 && (fds[1].revents & POLLIN) && !(fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
            return Read::TIMEOUT;
        }
        char chunk[4096];
        ssize_t n = ::recv(m_fd, chunk, sizeof(chunk), 0);
        if (n == 0) {
            return Read::CLOSED;
        }
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) {
                continue;
            }
            return Read::ERROR;
        }
        m_buffer.append(chunk, static_cast<std::size_t>(n));
        std::memset(chunk, 0, static_cast<std::size_t>(n));
    }
}

std::optional<std::string> request(
    const std::string& socketPath,
    const std::string& line,
    std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    auto conn = Connection::open(socketPath);
    if (!conn || !conn->sendLine(line, timeout)) {
        return std::nullopt;
    }
    std::string answer;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0 || conn->readLine(answer, left) != Connection::Read::LINE) {
        secureClear(answer);
        return std::nullopt;
    }
    return answer;
}

std::string opLine(const char* op) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("op");
    w.String(op);
    w.EndObject();
    return std::string(buf.GetString(), buf.GetSize());
}

std::string authFailureLine(const std::string& token) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("op");
    w.String("auth_failure");
    w.Key("token");
    w.String(token.data(), static_cast<rapidjson::SizeType>(token.size()));
    w.EndObject();
    std::string out(buf.GetString(), buf.GetSize());
    // Wipe the writer's copy of the token.
    std::memset(const_cast<char*>(buf.GetString()), 0, buf.GetSize());
    return out;
}

}  // namespace localApi
}  // namespace avsPair
