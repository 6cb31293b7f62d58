# A real uWSGI 2.0 node (Debian bookworm: uwsgi 2.0.21) announcing itself to the Switchyard router with
# --subscribe2, exactly as it would to a uWSGI HTTP router.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends uwsgi-core uwsgi-plugin-python3 \
 && rm -rf /var/lib/apt/lists/*
COPY docker/app.py /app/app.py
COPY docker/uwsgi-node.sh /app/uwsgi-node.sh
EXPOSE 3031
CMD ["/bin/sh", "/app/uwsgi-node.sh"]
