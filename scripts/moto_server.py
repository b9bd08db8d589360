"""moto's server (`python -m moto.server`, same arguments) with one fix.

moto's SQS `Queue.delete_message` rebuilds the queue's message list and
assigns it back without the lock that `add_message` takes, and the server
handles requests on many threads: two deletes at the same moment (two
consumers of one queue) can each write back a list that still holds the
other's message, which then comes back from the dead, in flight, after
its delete answered success. Real SQS does not do that (a successful
delete is final), and the loader's fleet test saw it as a flake (a queue
not empty after every message was deleted). Taking the queue's own lock
around the delete makes the list update atomic; nothing else changes.
"""
import sys

from moto.sqs import models

_delete_message = models.Queue.delete_message


def _locked_delete_message(self, receipt_handle):
    # _messages_lock is a Condition over an RLock: add_message takes it.
    with self._messages_lock:
        return _delete_message(self, receipt_handle)


models.Queue.delete_message = _locked_delete_message

from moto.server import main  # noqa: E402 (after the patch)

if __name__ == "__main__":
    main(sys.argv[1:])
