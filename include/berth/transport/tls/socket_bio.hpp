#pragma once
// tls_socket_io: the TCP socket under a TLS session as an OpenSSL BIO (part of <berth/transport/tls.hpp>, which
// links OpenSSL).
#include <openssl/bio.h>

#include <sys/socket.h>
#include <sys/types.h>

#include <cerrno>
#include <cstddef>

namespace berth::detail {

// The socket under a TLS session, as OpenSSL's BIO: OpenSSL reads and writes the (non-blocking) TCP socket itself,
// so a read decrypts as many records as have arrived straight into the caller's buffer, and a write sends records
// from the caller's. (Asio's SSL stream goes through a 17 KiB memory BIO, one record per operation, three extra
// copies of every byte.) send() with MSG_NOSIGNAL: a peer that closed must be an EPIPE, not a SIGPIPE.
struct tls_socket_io {
    int fd = -1;
    int error = 0;     // errno of the last failed send/recv that was not "try again"
    bool eof = false;  // the peer closed its side (a clean TLS close_notify comes before this)

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
    static bool try_again(int e) { return e == EAGAIN || e == EWOULDBLOCK || e == EINTR; }

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
    static int write(BIO* bio, const char* data, std::size_t size, std::size_t* done) {
        auto& io = of(bio);
        BIO_clear_retry_flags(bio);
        const ssize_t n = ::send(io.fd, data, size, MSG_NOSIGNAL);
        if (n >= 0) {
            *done = static_cast<std::size_t>(n);
            return 1;
        }
        if (try_again(errno))
            BIO_set_retry_write(bio);
        else
            io.error = errno;
        return 0;
    }
    static long ctrl(BIO* bio, int cmd, long, void*) {
        switch (cmd) {
        case BIO_CTRL_FLUSH: return 1;  // nothing is held back
        case BIO_CTRL_EOF: return of(bio).eof ? 1 : 0;
        default: return 0;
        }
    }
};

}  // namespace berth::detail
