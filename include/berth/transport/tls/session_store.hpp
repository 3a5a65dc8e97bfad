#pragma once
// tls_session_store: the newest resumable TLS session of one transport's SSL_CTX, offered to its later
// connections (part of <berth/transport/tls.hpp>, which links OpenSSL).
#include <openssl/ssl.h>

#include <mutex>

namespace berth::detail {

// The newest resumable session (TLS 1.3: ticket) the server gave the connections of one SSL_CTX, which belongs to
// one transport: no cache is shared between contexts, and OpenSSL keeps none of its own. It lives exactly as long
// as the context, which each connection holds a reference to, so a ticket that arrives on a connection that
// outlived its transport still has a place to go.
class tls_session_store {
public:
    tls_session_store(const tls_session_store&) = delete;
    tls_session_store& operator=(const tls_session_store&) = delete;

    static void attach(SSL_CTX* ctx) {
        auto* store = new tls_session_store;
        if (index() < 0 || SSL_CTX_set_ex_data(ctx, index(), store) != 1) {
            delete store;  // no resumption, every handshake in full
            return;
        }
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(ctx, &tls_session_store::on_new_session);
    }
    static tls_session_store* of(SSL_CTX* ctx) {
        return index() < 0 ? nullptr : static_cast<tls_session_store*>(SSL_CTX_get_ex_data(ctx, index()));
    }

    // Asks the server to resume the newest session on the connection `ssl` (it may decline: a full handshake).
    void offer(SSL* ssl) {
        std::lock_guard lock(mutex_);
        if (session_) SSL_set_session(ssl, session_);  // takes a reference of its own
    }
    void forget() { replace(nullptr); }

private:
    tls_session_store() = default;
    ~tls_session_store() { replace(nullptr); }

    void replace(SSL_SESSION* session) {
        std::lock_guard lock(mutex_);
        if (session_) SSL_SESSION_free(session_);
        session_ = session;
    }
    static int index() {
        static const int i = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, &free_store);
        return i;
    }
    static void free_store(void*, void* store, CRYPTO_EX_DATA*, int, long, void*) {
        delete static_cast<tls_session_store*>(store);
    }
    // Returning 1 keeps the reference OpenSSL passes.
    static int on_new_session(SSL* ssl, SSL_SESSION* session) {
        auto* store = of(SSL_get_SSL_CTX(ssl));
        if (!store || !SSL_SESSION_is_resumable(session)) return 0;
        store->replace(session);
        return 1;
    }

    std::mutex mutex_;
    SSL_SESSION* session_ = nullptr;
};

}  // namespace berth::detail
