#pragma once
// tls_socket_io: the TCP socket under a TLS session as an OpenSSL BIO (part of <berth/transport/tls.hpp>, which
// links OpenSSL).
#include <openssl/bio.h>

#include <sys/socket.h>
#include <sys/types.h>

#include <cerrno>
#include <cstddef>
#include <vector>

namespace berth::detail {

// The socket under a TLS session, as OpenSSL's BIO: OpenSSL reads and writes the (non-blocking) TCP socket itself,
// so a read decrypts as many records as have arrived straight into the caller's buffer. (Asio's SSL stream goes
// through a 17 KiB memory BIO, one record per operation, three extra copies of every byte.) Records written are
// gathered in `out` (up to out_capacity, allocated by the first write that needs it) and sent together when it is
// full or flushed: one send() per 16 KiB record made a large upload over TLS four times as many TCP writes (and
// wake-ups of the engine's reader) as over a unix socket. OpenSSL flushes after handshake messages and alerts;
// tls_stream flushes at the end of each write. send() with MSG_NOSIGNAL: a peer that closed must be an EPIPE, not
// a SIGPIPE.
struct tls_socket_io {
    static constexpr std::size_t out_capacity = 256 * 1024;
    static bool try_again(int e) { return e == EAGAIN || e == EWOULDBLOCK || e == EINTR; }

    int fd = -1;
    int error = 0;            // errno of the last failed send/recv that was not "try again"
    bool eof = false;         // the peer closed its side (a clean TLS close_notify comes before this)
    std::vector<char> out{};  // records written and not yet sent: out[out_sent, size())
    std::size_t out_sent = 0;

    // Sends what is held, as far as the socket takes it: true when all of it went (false: "try again", or `error`).
    bool flush() {
        while (out_sent < out.size()) {
            const ssize_t n = ::send(fd, out.data() + out_sent, out.size() - out_sent, MSG_NOSIGNAL);
            if (n < 0) {
                if (!try_again(errno)) error = errno;
                return false;
            }
            out_sent += static_cast<std::size_t>(n);
        }
        out.clear();  // the capacity stays: the next large write needs it again
        out_sent = 0;
        return true;
    }

    static BIO* make_bio(tls_socket_io& io) {
        BIO* bio = BIO_new(method());
        if (bio == nullptr) return nullptr;
        BIO_set_data(bio, &io);
        BIO_set_init(bio, 1);
        return bio;
    }

private:
    static const BIO_METHOD* method() {
        static BIO_METHOD* const m = [] {
            BIO_METHOD* made = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "berth socket");
            if (made == nullptr) return made;
            BIO_meth_set_read_ex(made, &read);
            BIO_meth_set_write_ex(made, &write);
            BIO_meth_set_ctrl(made, &ctrl);
            return made;
        }();
        return m;
    }
    static tls_socket_io& of(BIO* bio) { return *static_cast<tls_socket_io*>(BIO_get_data(bio)); }

    static int read(BIO* bio, char* data, std::size_t size, std::size_t* done) {
        auto& io = of(bio);
        BIO_clear_retry_flags(bio);
        const ssize_t n = ::recv(io.fd, data, size, 0);
        if (n > 0) {
            *done = static_cast<std::size_t>(n);
            return 1;
        }
        if (n == 0)
            io.eof = true;
        else if (try_again(errno))
            BIO_set_retry_read(bio);
        else
            io.error = errno;
        return 0;
    }
    // Takes the record into `out`, sending what is held first when there is no room for it ("try again" when the
    // socket takes too little of it).
    static int write(BIO* bio, const char* data, std::size_t size, std::size_t* done) {
        auto& io = of(bio);
        BIO_clear_retry_flags(bio);
        if (io.out.size() + size > out_capacity && !io.flush()) {
            if (io.error != 0) return 0;
            io.out.erase(io.out.begin(), io.out.begin() + static_cast<std::ptrdiff_t>(io.out_sent));
            io.out_sent = 0;
            if (io.out.size() + size > out_capacity) {
                BIO_set_retry_write(bio);
                return 0;
            }
        }
        io.out.insert(io.out.end(), data, data + size);
        *done = size;
        return 1;
    }
    static long ctrl(BIO* bio, int cmd, long, void*) {
        switch (cmd) {
        case BIO_CTRL_FLUSH: {
            auto& io = of(bio);
            BIO_clear_retry_flags(bio);
            if (io.flush()) return 1;
            if (io.error == 0) BIO_set_retry_write(bio);
            return 0;
        }
        case BIO_CTRL_WPENDING: return static_cast<long>(of(bio).out.size() - of(bio).out_sent);
        case BIO_CTRL_EOF: return of(bio).eof ? 1 : 0;
        default: return 0;
        }
    }
};

}  // namespace berth::detail
