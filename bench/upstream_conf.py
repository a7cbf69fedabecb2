"""The benchmarks' upstream: nginx answering a small static body at ``/`` (what wrk asks for), and at
``/whoami`` the identity headers and cookie it received (``apache.py``'s smoke check). One config for
``run.py``, ``soak.py``, ``ab.py`` and ``apache.py``: ``UPSTREAM_CONF.format(dir=..., port=...)``."""

UPSTREAM_CONF = """
worker_processes 1; pid {dir}/up.pid; error_log {dir}/up-error.log;
events {{ worker_connections 1024; }}
http {{ access_log off; client_body_temp_path {dir}/b; proxy_temp_path {dir}/p; fastcgi_temp_path {dir}/f;
  uwsgi_temp_path {dir}/u; scgi_temp_path {dir}/s;
  server {{ listen 127.0.0.1:{port};
    location / {{ default_type text/plain; return 200 "hello from the upstream\\n"; }}
    location = /whoami {{ default_type text/plain; return 200 "user=$http_x_forwarded_user \
email=$http_x_forwarded_email name=$http_x_forwarded_preferred_username groups=$http_x_forwarded_groups \
cookie=$http_cookie\\n"; }} }}
}}
"""
