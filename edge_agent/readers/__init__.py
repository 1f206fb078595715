"""Reader kinds. The built-in ones (`BUILTIN`) are imported when a config names them (`reader_class`)."""

from edge_agent.readers.base import BUILTIN, READERS, Reader, ReaderContext, reader_class, reader_from_config, register

__all__ = ["BUILTIN", "READERS", "Reader", "ReaderContext", "reader_class", "reader_from_config", "register"]
