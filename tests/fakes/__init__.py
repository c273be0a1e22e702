"""Local fake servers for outside APIs. Each speaks the real wire format on 127.0.0.1 and can be told to
fail (401/403/429/5xx, hang, garbled body) on chosen paths; see server.py for the shared base."""
