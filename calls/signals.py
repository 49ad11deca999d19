from django.dispatch import Signal

# Sent by the media process (from a thread that may use the database) when a call's recording is
# finished on local disk. Keyword arguments: call_id, path (pathlib.Path of an Ogg Opus file of two
# mono streams, the customer left and the agent right; a stereo WAV from earlier versions), duration_s.
# The recordings app stores it; `path` is the receiver's to remove.
recording_finished = Signal()

# The agent filed a call's wrap-up (disposition and notes), once committed. Arguments: call_id.
call_filed = Signal()
