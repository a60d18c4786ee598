"""CardDAV address books (RFC 6352): iCloud, Nextcloud, Fastmail, Radicale, Xandikos…

Finding the address book
------------------------
From a bare host (``https://contacts.icloud.com``) or any URL on the server: RFC 6764
``/.well-known/carddav`` → ``DAV:current-user-principal`` → ``CARDDAV:addressbook-home-set``
→ the collections under the home whose resourcetype is ``CARDDAV:addressbook``. The setting
``addressbook`` picks one (full URL, path, last path segment or display name); without it the
only book is used, and several give a ConfigError listing them. ``create`` makes a new book
with an extended MKCOL (RFC 5689). A URL that is itself an address book is used as it is.
A book given as a full URL or path is used without any request (every sync run starts so);
:meth:`CardDavApp.check`, run when the account is added, proves it and the password with one
``PROPFIND Depth: 0``, as discovery proves them with its own requests.
:meth:`CardDavApp.list_addressbooks` and :meth:`CardDavApp.create_addressbook` are there for
the wizard.

Ids and versions
----------------
A record's id is its resource name in the book without ``.vcf`` (``ann.vcf`` → ``ann``); a
name without that extension gets a trailing ``/`` so the mapping stays one-to-one. We choose
the id of new cards (``<id>.vcf``, ``UID:<id>``), so crash recovery can fetch by id. The
version is the ETag, with ``" g:<hash>"`` appended when the card belongs to group cards (so a
membership change, which does not touch the card, still changes the version) and ``" dup"``
when another card has the same UID.

Reading
-------
The connector keeps a small mirror of the book in a cache file (resource name → ETag, UID,
group membership and the card text, plus the collection's sync-token; no secret). Listing
asks for ``sync-collection`` (RFC 6578) since the stored token — one request that returns only
what changed — and falls back to one ``PROPFIND Depth: 1`` of ETags on servers without it.
An invalid or expired token (403/409/412 with ``DAV:valid-sync-token``) means a full listing,
compared with the mirror, so no change is lost. Bodies of new or changed cards are fetched with
``addressbook-multiget`` in batches of :data:`MULTIGET_BATCH`; ``fetch()`` of a card whose ETag
the listing just confirmed is answered from the mirror. Carriage returns inside
``address-data`` are kept (XML parsers would fold CRLF into LF), so cards are edited as the
server stores them. The mirror is only an optimisation: a missing or damaged file means a full
read, and every entry is checked against the server's ETag before use.

Segments: when the book holds group cards (``KIND:group`` + ``MEMBER`` in vCard 4.0, or
iCloud's ``X-ADDRESSBOOKSERVER-KIND:group`` + ``X-ADDRESSBOOKSERVER-MEMBER``), groups are the
segments and group cards are not records; otherwise ``CATEGORIES`` values are. Broken cards
and cards sharing a UID are :class:`Unreadable` with a message saying which.

Writing
-------
``PUT`` with ``If-None-Match: *`` to create and ``If-Match: <etag>`` to update, a few at a
time in parallel (the first of a batch alone; once the server refuses us as a whole, 401,
429 or unreachable, no further PUT of the batch is sent). Updates patch the server's own
text (``vcard_text.apply_patch``): untouched properties (PHOTO, X- properties, ``itemN.``
groups with ``X-ABLabel``…) stay byte for byte, in the card's own vCard version. A 412
means the card changed on the server: it is read again and, if none of the fields we patch
changed meanwhile, the patch is applied to the fresh card once more (once); otherwise, or on
a second 412, the op fails with :class:`Conflict`. Writes are never retried blindly. A card
the server refuses (4xx) fails that op alone (:class:`Rejected`); 401, 429 and unreachable
servers raise for the whole app.

Modules: ``dav`` (requests and answers on the wire), ``discovery`` (finding the book),
``mirror`` (the local copy and every card request), ``cache_file`` (the mirror's file, read
in layers: a run where nothing changed decodes its header only), ``groups`` (group cards),
``app`` (the connector).
"""

from app.connectors.carddav.app import CardDavApp
from app.connectors.carddav.discovery import AddressBook
from app.connectors.carddav.mirror import id_of, name_of

__all__ = ["AddressBook", "CardDavApp", "id_of", "name_of"]
