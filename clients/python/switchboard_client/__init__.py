"""Switchboard client: the native protocol's codec and a blocking client (standard library only)."""
from .client import (Accepted, Client, ConnectionClosed, HistoryPage, ReadElsewhere, Receipt, SwitchboardError,
                     Welcome)
from .codec import Address, Frame, Item, Message, User, decode, encode

__all__ = ["Accepted", "Address", "Client", "ConnectionClosed", "Frame", "HistoryPage", "Item", "Message",
           "ReadElsewhere", "Receipt", "SwitchboardError", "User", "Welcome", "decode", "encode"]
__version__ = "0.1.0"
