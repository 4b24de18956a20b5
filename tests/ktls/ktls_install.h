/* Hand a finished wolfSSL session's record layer to the kernel (server side).
 *
 * Test code for the kTLS VM (scripts/ktls-vm-test), written independently of
 * the gateway's tls/ so that the VM, the kernel modules and wolfSSL's key
 * export are proven on their own: when the gateway case fails and this one
 * passes, the fault is in the gateway, not in the machinery. */
#ifndef KTLS_INSTALL_H
#define KTLS_INSTALL_H

#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

/* Installs TLS_TX and TLS_RX on fd (an established TCP socket whose
 * handshake wolfSSL finished as the server, with nothing read past it).
 * Returns 0, or -1 with a message in err (size errlen) naming the step that
 * failed: the ULP, the cipher wolfSSL negotiated, or one direction. */
int ktls_install_server(WOLFSSL *ssl, int fd, char *err, size_t errlen);

/* The kernel's name for the negotiated cipher, for the logs ("aes-gcm-128"). */
const char *ktls_cipher_name(WOLFSSL *ssl);

#endif
