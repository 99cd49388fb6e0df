"""The customer-service mailbox reader (pipeline/channels/email.py) on small synthetic mbox files.

Messages are built with the standard library (email.message / email.mime) and
written with `mailbox.mbox`, an independent mbox writer (it quotes body lines
starting "From " as ">From ").
"""

from __future__ import annotations

import email.parser
import email.policy
import mailbox
import pathlib
import sys
from datetime import datetime, timedelta, timezone
from email.header import Header
from email.message import EmailMessage, Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime

import pandas as pd
import pytest

from pipeline.channels import email as email_channel
from pipeline.channels.base import UnreadableFile
from pipeline.codes import Flag, Reason
from schemas.canonical import GIVEN_FIRST, READ_ERROR_COLUMNS, STAGED_COLUMNS, STAGED_STRING_COLUMNS

CHECK_CHARACTERS = "0123456789ABCDEFHJKLMNPRSTUVWXY"
EET = timezone(timedelta(hours=2))


def identity_code(ddmmyy: str, sign: str, individual: int) -> str:
    """A well-formed identity code with a temporary (900-999) number: never a real person's."""
    assert 900 <= individual <= 999
    return f"{ddmmyy}{sign}{individual}{CHECK_CHARACTERS[int(ddmmyy + str(individual)) % 31]}"


CODE = identity_code("010203", "A", 912)
METERING_POINT = "643007574000125688"
IBAN = "FI21 1234 5600 0007 85"  # the example account of docs/intake_formats.md


def finnish_body(name="Öljy Äijälä-Testi", code=CODE, marketing="kyllä") -> str:
    return (
        "Hei,\n\nhaluaisin tehdä sopimuksen. Tietoni:\n\n"
        f"Nimi: {name}\n"
        f"Henkilötunnus: {code}\n"
        "Osoite: Kuusitie 5 B 12, 00100 Helsinki\n"
        "Puhelin: 040 1234567\n"
        f"Tilinumero: {IBAN}\n"
        "Tuote: sähkö\n"
        f"Käyttöpaikka: {METERING_POINT}\n"
        f"Suoramarkkinointikielto: {marketing}\n"
        "\nYstävällisin terveisin\nÖljy\nPuhelin: 040 7654321\n"  # the signature repeats a label
    )


def message(body: str | None = None, *, message_id="<reg-1.abc@example.invalid>",
            date=datetime(2026, 11, 24, 18, 3, 11, tzinfo=EET), sender="Öljy Äijälä <oljy@example.invalid>",
            charset="utf-8", cte="quoted-printable") -> EmailMessage:
    msg = EmailMessage()
    if sender is not None:
        msg["From"] = sender
    msg["To"] = "asiakaspalvelu@example.invalid"
    msg["Subject"] = "Sopimus"
    if date is not None:
        msg["Date"] = format_datetime(date) if isinstance(date, datetime) else date
    if message_id is not None:
        msg["Message-ID"] = message_id
    msg.set_content(finnish_body() if body is None else body, charset=charset, cte=cte)
    return msg


def with_headers(msg: Message, message_id="<m@example.invalid>", sender="tester@example.invalid") -> Message:
    msg["From"] = sender
    msg["Date"] = "Tue, 24 Nov 2026 10:00:00 +0200"
    msg["Message-ID"] = message_id
    return msg


def write_mbox(tmp_path: pathlib.Path, messages, name="email_20261124.mbox") -> pathlib.Path:
    path = tmp_path / name
    box = mailbox.mbox(path)
    for msg in messages:
        box.add(msg)
    box.flush()
    box.close()
    return path


def stdlib_text(raw: bytes) -> str:
    """The reference: the stdlib's parser picks the plain body (or the HTML one)."""
    parsed = email.parser.BytesParser(policy=email.policy.default).parsebytes(raw)
    body = parsed.get_body(preferencelist=("plain", "html"))
    if body is None:
        return ""
    content = body.get_content()
    return content if body.get_content_subtype() == "plain" else email_channel.html_to_text(content)


def test_module_contract():
    assert email_channel.CHANNEL == "email"
    # The module's name shadows nothing: `email` is still the standard library.
    assert pathlib.Path(email.parser.__file__).parent.parent == pathlib.Path(pathlib.__file__).parent
    assert "pipeline" not in pathlib.Path(sys.modules["email"].__file__).parts


def test_reads_every_labelled_field_of_a_utf8_message(tmp_path):
    result = email_channel.read(write_mbox(tmp_path, [message()]))
    assert list(result.records.columns) == list(STAGED_COLUMNS)
    assert list(result.errors.columns) == list(READ_ERROR_COLUMNS)
    assert result.count == 1 and result.errors.empty
    record = result.records.iloc[0]

    assert record["channel"] == "email"
    assert record["source_record_id"] == "reg-1.abc@example.invalid"
    assert record["record_number"] == 1
    assert record["observed_at"] == pd.Timestamp("2026-11-24 16:03:11", tz="UTC")
    assert record["email"] == "oljy@example.invalid"
    assert record["full_name"] == "Öljy Äijälä-Testi"
    assert record["name_order"] == GIVEN_FIRST
    assert record["personal_id"] == CODE
    assert record["address_line"] == "Kuusitie 5 B 12, 00100 Helsinki"
    assert record["phone"] == "040 1234567"  # the first one: the signature's comes later
    assert record["account"] == IBAN
    assert record["product"] == "sähkö"
    assert record["metering_point"] == METERING_POINT
    assert record["marketing_prohibited"] is True or record["marketing_prohibited"] == True  # noqa: E712
    assert record["identity_verified"] == False  # noqa: E712
    assert record["read_flags"] == ""
    assert pd.isna(record["reject_reason"])
    for column in ("first_names", "last_name", "street_address", "postal_code", "city", "postal_code_and_city"):
        assert pd.isna(record[column]), column


def test_staged_dtypes(tmp_path):
    records = email_channel.read(write_mbox(tmp_path, [message(), message("Kiitos!", message_id="<q@x>")])).records
    for column in STAGED_STRING_COLUMNS:
        assert records[column].dtype == "string[pyarrow]", column
    assert str(records["observed_at"].dtype) == "datetime64[ns, UTC]"
    assert records["marketing_prohibited"].dtype == "boolean"
    assert records["identity_verified"].dtype == bool
    assert records["record_number"].tolist() == [1, 2]


def test_swedish_labels_any_case_and_spacing(tmp_path):
    body = ("Hej!\n\n"
            "NAMN :  Åsa Ström-Test\n"
            "personbeteckning:" + CODE.lower() + "\n"
            "Adress\t:\tBjörkvägen 3, 02100 Esbo\n"
            "Telefon : +358 40 123 4567\n"
            "Kontonummer: 123456-785\n"
            "Produkt: fjärrvärme\n"
            "Förbrukningsplats: " + METERING_POINT + "\n"
            "Förbud  mot direktmarknadsföring :  Nej\n\n"
            "Med vänliga hälsningar\nÅsa\n")
    record = email_channel.read(write_mbox(tmp_path, [message(body)])).records.iloc[0]
    assert record["full_name"] == "Åsa Ström-Test"
    assert record["personal_id"] == CODE.lower()
    assert record["address_line"] == "Björkvägen 3, 02100 Esbo"
    assert record["phone"] == "+358 40 123 4567"
    assert record["account"] == "123456-785"
    assert record["product"] == "fjärrvärme"
    assert record["metering_point"] == METERING_POINT
    assert record["marketing_prohibited"] == False  # noqa: E712
    assert record["read_flags"] == ""


def test_quoted_printable_iso_8859_1_body(tmp_path):
    msg = message(finnish_body(name="Åke Öström-Täsä"), charset="iso-8859-1", cte="quoted-printable")
    raw = msg.as_bytes()
    assert b"=E4" in raw and b"=F6" in raw and b"=C5" in raw  # really Latin-1 bytes, quoted-printable
    record = email_channel.read(write_mbox(tmp_path, [msg])).records.iloc[0]
    assert record["full_name"] == "Åke Öström-Täsä"
    assert record["metering_point"] == METERING_POINT  # the label "Käyttöpaikka" decoded too
    assert record["product"] == "sähkö"


def test_base64_body(tmp_path):
    msg = message(cte="base64")
    assert b"Content-Transfer-Encoding: base64" in msg.as_bytes()
    record = email_channel.read(write_mbox(tmp_path, [msg])).records.iloc[0]
    assert record["full_name"] == "Öljy Äijälä-Testi"
    assert record["personal_id"] == CODE


def test_plain_part_wins_over_its_html_alternative(tmp_path):
    alternative = MIMEMultipart("alternative")
    alternative.attach(MIMEText(finnish_body(name="Plain Testi"), "plain", "utf-8"))
    alternative.attach(MIMEText("<p>Nimi: Html Testi<br>Tuote: kaukolämpö</p>", "html", "utf-8"))
    record = email_channel.read(write_mbox(tmp_path, [with_headers(alternative)])).records.iloc[0]
    assert record["full_name"] == "Plain Testi"
    assert record["product"] == "sähkö"


def test_html_only_message_is_read_without_tags(tmp_path):
    markup = ("<html><head><style>p {color: red}</style></head><body>"
              "<p>Hyv&auml; asiakaspalvelu,</p>\n<table><tr><td>Nimi:</td><td>Testi   <b>Tag&ouml;n</b></td></tr>\n"
              "<tr><td>K&auml;ytt&ouml;paikka:</td><td>" + METERING_POINT + "</td></tr></table>"
              "<div>Suoramarkkinointikielto:&nbsp;ei</div><p>Terveisin<br>Testi</p></body></html>")
    record = email_channel.read(write_mbox(tmp_path, [with_headers(MIMEText(markup, "html", "utf-8"))])).records.iloc[0]
    assert record["full_name"] == "Testi Tagön"
    assert record["metering_point"] == METERING_POINT
    assert record["marketing_prohibited"] == False  # noqa: E712
    assert pd.isna(record["reject_reason"])


def test_message_without_labels_is_staged_as_not_a_registration(tmp_path):
    question = message("Hei,\n\nmilloin seuraava lasku tulee?\n\nTerveisin\nTesti\n",
                       message_id="<q-7@example.invalid>")
    result = email_channel.read(write_mbox(tmp_path, [message(), question]))
    assert result.count == 2 and len(result.records) == 2
    rejected = result.records.iloc[1]
    assert rejected["reject_reason"] == Reason.NOT_A_REGISTRATION.value
    assert rejected["source_record_id"] == "q-7@example.invalid"
    assert rejected["email"] == "oljy@example.invalid"
    assert rejected["record_number"] == 2
    assert pd.isna(result.records.iloc[0]["reject_reason"])


def test_attachment_is_not_the_body(tmp_path):
    mixed = MIMEMultipart("mixed")
    mixed.attach(MIMEText("Liitteenä tietoni.\n", "plain", "utf-8"))
    attachment = MIMEText(finnish_body(), "plain", "utf-8")
    attachment.add_header("Content-Disposition", "attachment", filename="tiedot.txt")
    mixed.attach(attachment)
    record = email_channel.read(write_mbox(tmp_path, [with_headers(mixed)])).records.iloc[0]
    assert record["reject_reason"] == Reason.NOT_A_REGISTRATION.value
    assert pd.isna(record["full_name"])


def test_quoted_from_line_in_a_body_does_not_split_the_message(tmp_path):
    body = "Hei,\n\nFrom now on I use this address.\n\nNimi: Testi Fromeri\nTuote: TV\n"
    path = write_mbox(tmp_path, [message(body), message(message_id="<reg-2@example.invalid>")])
    assert b"\n>From now on" in path.read_bytes()  # the writer quoted it
    result = email_channel.read(path)
    assert result.count == 2 and result.errors.empty
    assert result.records["full_name"].tolist() == ["Testi Fromeri", "Öljy Äijälä-Testi"]
    assert result.records["source_record_id"].tolist() == ["reg-1.abc@example.invalid", "reg-2@example.invalid"]


def test_split_mbox_unquotes_one_level_and_handles_crlf():
    data = (b"From a@example.invalid Tue Nov 24 10:00:00 2026\r\nSubject: a\r\n\r\n>From one\r\n>>From two\r\n\r\n"
            b"From b@example.invalid Tue Nov 24 10:01:00 2026\r\nSubject: b\r\n\r\nx\r\n")
    assert email_channel.split_mbox(data) == [b"Subject: a\n\nFrom one\n>From two\n", b"Subject: b\n\nx\n"]
    assert email_channel.split_mbox(b"Subject: no envelope\n\nx\n") is None


def test_dates_with_any_offset_become_utc(tmp_path):
    dates = ["Tue, 24 Nov 2026 18:03:11 +0200", "Tue, 24 Nov 2026 11:03:11 -0500",
             "24 Nov 2026 16:03:11 +0000", "Tue, 24 Nov 2026 16:03 -0000", "Tue, 24 Nov 2026 18:03:11 +0200 (EET)",
             "tomorrow", None]
    messages = [message(date=date, message_id=f"<d{i}@x>") for i, date in enumerate(dates)]
    observed = email_channel.read(write_mbox(tmp_path, messages)).records["observed_at"].tolist()
    moment = pd.Timestamp("2026-11-24 16:03:11", tz="UTC")
    assert observed[:3] == [moment, moment, moment]
    assert observed[3] == pd.Timestamp("2026-11-24 16:03:00", tz="UTC")
    assert observed[4] == moment
    assert pd.isna(observed[5]) and pd.isna(observed[6])  # the normaliser quarantines them


def test_sender_address_without_display_name(tmp_path):
    senders = [str(Header("Äijö Testinen", "utf-8").encode()) + " <aijo@example.invalid>",
               '"Testinen, Aino" <aino.t@example.invalid>', "bare@example.invalid", None]
    messages = [message(sender=sender, message_id=f"<s{i}@x>") for i, sender in enumerate(senders)]
    assert b"From: =?utf-8?" in messages[0].as_bytes()
    records = email_channel.read(write_mbox(tmp_path, messages)).records
    assert records["email"].tolist()[:3] == ["aijo@example.invalid", "aino.t@example.invalid", "bare@example.invalid"]
    assert pd.isna(records["email"].iloc[3])


def test_missing_message_id_is_staged_without_id(tmp_path):
    records = email_channel.read(write_mbox(tmp_path, [message(message_id=None)])).records
    assert len(records) == 1 and pd.isna(records["source_record_id"].iloc[0])


def test_unrecognised_marketing_answer_is_na_with_a_flag(tmp_path):
    messages = [message(finnish_body(marketing=answer), message_id=f"<m{i}@x>")
                for i, answer in enumerate(["ehkä", "EI", "Ja.", ""])]
    records = email_channel.read(write_mbox(tmp_path, messages)).records
    assert records["marketing_prohibited"].tolist() == [pd.NA, False, True, pd.NA]
    assert records["read_flags"].tolist() == [Flag.MARKETING_ANSWER_UNRECOGNISED.value, "", "", ""]


def test_quoted_reply_lines_and_decomposed_letters(tmp_path):
    body = ("> Nimi: Asiakaspalvelun Esimerkki\n> Tuote: TV\n\n"
            "Nimi: Testi Vastaaja\nKa\u0308ytto\u0308paikka: " + METERING_POINT + "\n")
    record = email_channel.read(write_mbox(tmp_path, [message(body)])).records.iloc[0]
    assert record["full_name"] == "Testi Vastaaja"
    assert pd.isna(record["product"])  # only in the quoted text
    assert record["metering_point"] == METERING_POINT


def test_format_flowed_lines_are_joined(tmp_path):
    raw = (b"From x@example.invalid Tue Nov 24 10:00:00 2026\n"
           b"Message-ID: <f@x>\nDate: Tue, 24 Nov 2026 10:00:00 +0200\nFrom: x@example.invalid\n"
           b"Content-Type: text/plain; charset=utf-8; format=flowed\n\n"
           b"Osoite: Kuusitie 5 B 12, \n00100 Helsinki\nNimi: Testi Flow\n\n")
    path = tmp_path / "email_20261124.mbox"
    path.write_bytes(raw)
    record = email_channel.read(path).records.iloc[0]
    assert record["address_line"] == "Kuusitie 5 B 12, 00100 Helsinki"
    assert record["full_name"] == "Testi Flow"


def test_unparseable_message_is_a_read_error_and_the_rest_load(tmp_path):
    good = message().as_bytes()
    no_boundary = (b"Message-ID: <broken-1@x>\nFrom: a@example.invalid\nDate: Tue, 24 Nov 2026 10:00:00 +0200\n"
                   b"Content-Type: multipart/alternative\n\nNimi: Rikki\n")
    bad_base64 = (b"Message-ID: <broken-2@x>\nFrom: a@example.invalid\nContent-Type: text/plain\n"
                  b"Content-Transfer-Encoding: base64\n\nTmltaTog=x\n")
    no_headers = b"\n\njust some text without any header\n"
    envelope = b"From a@example.invalid Tue Nov 24 10:00:00 2026\n"
    path = tmp_path / "email_20261124.mbox"
    path.write_bytes(b"".join(envelope + m + b"\n" for m in (good, no_boundary, bad_base64, no_headers, good)))

    result = email_channel.read(path)
    assert result.count == 5
    assert result.records["record_number"].tolist() == [1, 5]
    errors = result.errors
    assert errors["record_number"].tolist() == [2, 3, 4]
    assert set(errors["reason"]) == {Reason.MALFORMED_RECORD.value}
    assert errors["source_record_id"].tolist()[:2] == ["broken-1@x", "broken-2@x"]
    assert pd.isna(errors["source_record_id"].iloc[2])
    assert "Nimi: Rikki" in errors["raw"].iloc[0]  # kept for the steward
    assert set(errors["channel"]) == {"email"}


@pytest.mark.parametrize("content", [b"", b"  \n\n\t \r\n"])
def test_empty_mbox_is_an_unreadable_file(tmp_path, content):
    path = tmp_path / "email_20261124.mbox"
    path.write_bytes(content)
    with pytest.raises(UnreadableFile) as caught:
        email_channel.read(path)
    assert caught.value.reason == Reason.FILE_EMPTY
    assert "email_20261124.mbox" in caught.value.detail


def test_not_an_mbox_names_the_file_not_its_content(tmp_path):
    path = tmp_path / "email_20261124.mbox"
    path.write_text(f"Nimi: Testi\nHenkilötunnus: {CODE}\n", encoding="utf-8")
    with pytest.raises(UnreadableFile) as caught:
        email_channel.read(path)
    assert caught.value.reason == Reason.FILE_UNREADABLE
    assert "email_20261124.mbox" in str(caught.value)
    assert CODE not in str(caught.value) and "Testi" not in str(caught.value)


def _variety() -> list[Message]:
    """Messages of many shapes, for the comparison with the stdlib's parser."""
    out: list[Message] = [message(), message(charset="iso-8859-1"), message(cte="base64"), message(cte="8bit")]
    alternative = MIMEMultipart("alternative")
    alternative.attach(MIMEText(finnish_body(name="Äänekoski Testi"), "plain", "iso-8859-1"))
    alternative.attach(MIMEText("<p>Nimi: Html</p>", "html", "utf-8"))
    out.append(alternative)
    related = MIMEMultipart("related")
    inner = MIMEMultipart("alternative")
    inner.attach(MIMEText("<p>Nimi: Vain&nbsp;Html</p><p>Tuote: TV</p>", "html", "utf-8"))
    related.attach(inner)
    out.append(related)
    mixed = MIMEMultipart("mixed")
    mixed.attach(MIMEText("<div>Tuote: laajakaista</div>", "html", "utf-8"))
    mixed.attach(MIMEText(finnish_body(name="Toinen Osa"), "plain", "utf-8"))
    out.append(mixed)
    return [with_headers(m, message_id=f"<v{i}@x>") if "Message-ID" not in m else m for i, m in enumerate(out)]


@pytest.mark.parametrize("index", range(7))
def test_text_found_agrees_with_the_stdlib_parser(index):
    raw = _variety()[index].as_bytes()
    _, text = email_channel.parse_message(raw)
    ours = email_channel.labelled_fields([text]).iloc[0]
    reference = email_channel.labelled_fields([stdlib_text(raw)]).iloc[0]
    assert ours.notna().sum() > 0
    assert ours.fillna("∅").to_dict() == reference.fillna("∅").to_dict()
