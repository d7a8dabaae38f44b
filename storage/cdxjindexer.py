"""The CDXJ indexer: cdxj-indexer's own class with our extras (storage/cdxj.py says which).

A module of its own because cdxj-indexer is slow to import (pyamf pulls in
pkg_resources: ~0.3 s), and most commands read indexes without writing one.
"""

from __future__ import annotations

from cdxj_indexer.main import CDXJIndexer, SortingWriter

INDEXED_RECORDS = CDXJIndexer.DEFAULT_RECORDS + ["conversion"]


class ArchiveIndexer(CDXJIndexer):
    """cdxj-indexer's defaults, plus conversion records and the record-id extras."""

    def __init__(self, output, inputs, filename):
        super().__init__(output, inputs, sort=True, filename=filename)
        self.include_records = INDEXED_RECORDS

    def filter_record(self, record):
        if record.rec_type == "conversion":
            return True
        return super().filter_record(record)

    def process_index_entry(self, it, record, filename, output):
        # Same as warcio's Indexer.process_index_entry, with the extras appended
        # after the standard fields so the standard part keeps its order.
        index = self._new_dict(record)
        for field in self.fields:
            value = self.get_field(record, field, it, filename)
            if value is not None:
                index[self.field_names.get(field, field)] = value
        index["record_id"] = record.rec_headers.get_header("WARC-Record-ID")
        index["warc_date"] = record.rec_headers.get_header("WARC-Date")
        if record.rec_type == "conversion":
            refers_to = record.rec_headers.get_header("WARC-Refers-To")
            if refers_to:
                index["refers_to"] = refers_to
        self._write_line(output, index, record, filename)

    def index_into(self, out) -> None:
        # CDXJIndexer.process_all opens and closes self.output itself; here the
        # sorted lines go to a writer we keep (cdxj-indexer's own SortingWriter).
        sorter = SortingWriter(out, self.max_sort_buff_size)
        self.output = sorter
        for input_ in self.inputs:
            self.process_one(input_, sorter, self.force_filename)
        sorter.flush()
