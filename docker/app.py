# Demo WSGI app for the uwsgi-node container: answers every request with the container's hostname.
import socket


def application(environ, start_response):
    body = "hello from uwsgi-node {} ({} {}, Host: {})\n".format(
        socket.gethostname(),
        environ.get("REQUEST_METHOD", "-"),
        environ.get("REQUEST_URI", environ.get("PATH_INFO", "/")),
        environ.get("HTTP_HOST", "-"),
    ).encode("utf-8")
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [body]
