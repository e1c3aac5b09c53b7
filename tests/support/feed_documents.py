"""Feed documents of every kind finsent polls, served by the tests on 127.0.0.1.

WRITTEN BY HAND: no real copy of these feeds could be fetched on the machines these tests were written
on (no internet).  Each document follows the format its publisher uses, as documented and as known from
real copies seen before: SEC EDGAR's current-filings Atom (``browse-edgar?action=getcurrent&output=atom``:
``<title>FORM - COMPANY (CIK) (Filer)</title>``, an HTML ``<summary>`` with Filed / AccNo / Size and one
line per 8-K item, the accession number in ``<id>``), RSS 2.0 of GlobeNewswire, PR Newswire and Business
Wire (issuers tagged "(NYSE: XYZ)" in the description, ``dc:`` elements), the Federal Reserve's press
release RSS, and a plain Atom 1.0 feed.  The companies and CIKs are real (the linker must find them in
the shipped SEC reference), the announcements are made up, and so are the company "Zorblax Widgets"
and its CIK 1999999, which the reference does not list.
"""

from __future__ import annotations

# --------------------------------------------------------------------------- SEC EDGAR (8-K)


def edgar_feed(title_time: str, updated: str, entries: str) -> str:
    """EDGAR's current-filings Atom around ``entries`` (its head as EDGAR writes it)."""
    return f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<feed xmlns="http://www.w3.org/2005/Atom">
<title>Latest Filings - {title_time}</title>
<link rel="alternate" href="/cgi-bin/browse-edgar?action=getcurrent"/>
<link rel="self" href="/cgi-bin/browse-edgar?action=getcurrent"/>
<id>https://www.sec.gov/cgi-bin/browse-edgar?action=getcurrent</id>
<author><name>Webmaster</name><email>webmaster@sec.gov</email></author>
<updated>{updated}</updated>
{entries}</feed>
"""


EDGAR_8K = edgar_feed("Thu, 01 Aug 2024 16:35:02 EDT", "2024-08-01T16:35:02-04:00", """<entry>
<title>8-K - Apple Inc. (0000320193) (Filer)</title>
<link rel="alternate" type="text/html" href="https://www.sec.gov/Archives/edgar/data/320193/000032019324000081/0000320193-24-000081-index.htm"/>
<summary type="html"> &lt;b&gt;Filed:&lt;/b&gt; 2024-08-01 &lt;b&gt;AccNo:&lt;/b&gt; 0000320193-24-000081 &lt;b&gt;Size:&lt;/b&gt; 2 MB&lt;br&gt;Item 2.02: Results of Operations and Financial Condition&lt;br&gt;Item 9.01: Financial Statements and Exhibits</summary>
<updated>2024-08-01T16:30:37-04:00</updated>
<category scheme="https://www.sec.gov/" label="form type" term="8-K"/>
<id>urn:tag:sec.gov,2008:accession-number=0000320193-24-000081</id>
</entry>
<entry>
<title>8-K - Duke Energy CORP (0001326160) (Filer)</title>
<link rel="alternate" type="text/html" href="https://www.sec.gov/Archives/edgar/data/1326160/000132616024000127/0001326160-24-000127-index.htm"/>
<summary type="html"> &lt;b&gt;Filed:&lt;/b&gt; 2024-08-01 &lt;b&gt;AccNo:&lt;/b&gt; 0001326160-24-000127 &lt;b&gt;Size:&lt;/b&gt; 310 KB&lt;br&gt;Item 5.02: Departure of Directors or Certain Officers; Election of Directors; Appointment of Certain Officers: Compensatory Arrangements of Certain Officers&lt;br&gt;Item 9.01: Financial Statements and Exhibits</summary>
<updated>2024-08-01T16:12:09-04:00</updated>
<category scheme="https://www.sec.gov/" label="form type" term="8-K"/>
<id>urn:tag:sec.gov,2008:accession-number=0001326160-24-000127</id>
</entry>
<entry>
<title>8-K - DUKE ENERGY CAROLINAS, LLC (0000030371) (Filer)</title>
<link rel="alternate" type="text/html" href="https://www.sec.gov/Archives/edgar/data/30371/000132616024000127/0001326160-24-000127-index.htm"/>
<summary type="html"> &lt;b&gt;Filed:&lt;/b&gt; 2024-08-01 &lt;b&gt;AccNo:&lt;/b&gt; 0001326160-24-000127 &lt;b&gt;Size:&lt;/b&gt; 310 KB&lt;br&gt;Item 5.02: Departure of Directors or Certain Officers; Election of Directors; Appointment of Certain Officers: Compensatory Arrangements of Certain Officers&lt;br&gt;Item 9.01: Financial Statements and Exhibits</summary>
<updated>2024-08-01T16:12:09-04:00</updated>
<category scheme="https://www.sec.gov/" label="form type" term="8-K"/>
<id>urn:tag:sec.gov,2008:accession-number=0001326160-24-000127</id>
</entry>
<entry>
<title>8-K - ZORBLAX WIDGETS HOLDINGS INC /DE/ (0001999999) (Filer)</title>
<link rel="alternate" type="text/html" href="https://www.sec.gov/Archives/edgar/data/1999999/000199999924000004/0001999999-24-000004-index.htm"/>
<summary type="html"> &lt;b&gt;Filed:&lt;/b&gt; 2024-08-01 &lt;b&gt;AccNo:&lt;/b&gt; 0001999999-24-000004 &lt;b&gt;Size:&lt;/b&gt; 95 KB&lt;br&gt;Item 1.03: Bankruptcy or Receivership&lt;br&gt;Item 2.04: Triggering Events That Accelerate or Increase a Direct Financial Obligation or an Obligation under an Off-Balance Sheet Arrangement&lt;br&gt;Item 7.01: Regulation FD Disclosure&lt;br&gt;Item 9.01: Financial Statements and Exhibits</summary>
<updated>2024-08-01T16:05:44-04:00</updated>
<category scheme="https://www.sec.gov/" label="form type" term="8-K"/>
<id>urn:tag:sec.gov,2008:accession-number=0001999999-24-000004</id>
</entry>
<entry>
<title>8-K - CATERPILLAR INC (0000018230) (Filer)</title>
<link rel="alternate" type="text/html" href="https://www.sec.gov/Archives/edgar/data/18230/000001823024000088/0000018230-24-000088-index.htm"/>
<summary type="html"> &lt;b&gt;Filed:&lt;/b&gt; 2024-08-01 &lt;b&gt;AccNo:&lt;/b&gt; 0000018230-24-000088 &lt;b&gt;Size:&lt;/b&gt; 180 KB&lt;br&gt;Item 2.01: Completion of Acquisition or Disposition of Assets&lt;br&gt;Item 8.01: Other Events</summary>
<updated>2024-08-01T15:58:21-04:00</updated>
<category scheme="https://www.sec.gov/" label="form type" term="8-K"/>
<id>urn:tag:sec.gov,2008:accession-number=0000018230-24-000088</id>
</entry>
""")
# what the 8-K document must become (accession -> ticker(s), topic, flags)
EDGAR_8K_EXPECTED = {
    "sec-0000320193-24-000081": (["AAPL"], "Earnings", None),
    "sec-0001326160-24-000127": (["DUK"], "Personnel Change", None),  # two filers, one in the reference
    "sec-0001999999-24-000004": ([], "Legal, Regulation", ["bankruptcy", "debt_acceleration"]),  # not in it
    "sec-0000018230-24-000088": (["CAT"], "M&A, Investments", None),
}

# --------------------------------------------------------------------------- SEC EDGAR (6-K)
EDGAR_6K = edgar_feed("Thu, 01 Aug 2024 16:40:11 EDT", "2024-08-01T16:40:11-04:00", """<entry>
<title>6-K - TOYOTA MOTOR CORP/ (0001094517) (Filer)</title>
<link rel="alternate" type="text/html" href="https://www.sec.gov/Archives/edgar/data/1094517/000119312524190001/0001193125-24-190001-index.htm"/>
<summary type="html"> &lt;b&gt;Filed:&lt;/b&gt; 2024-08-01 &lt;b&gt;AccNo:&lt;/b&gt; 0001193125-24-190001 &lt;b&gt;Size:&lt;/b&gt; 1 MB</summary>
<updated>2024-08-01T06:02:17-04:00</updated>
<category scheme="https://www.sec.gov/" label="form type" term="6-K"/>
<id>urn:tag:sec.gov,2008:accession-number=0001193125-24-190001</id>
</entry>
""")

# --------------------------------------------------------------------------- press-release wires
GLOBENEWSWIRE = """<?xml version="1.0" encoding="utf-8"?>
<rss xmlns:dc="http://purl.org/dc/elements/1.1/" version="2.0">
<channel>
<title>GlobeNewswire - News about Public Companies</title>
<link>https://www.globenewswire.com/</link>
<description>Latest news releases from public companies on GlobeNewswire</description>
<language>en</language>
<copyright>Copyright 2024 GlobeNewswire, Inc. All rights reserved.</copyright>
<lastBuildDate>Thu, 01 Aug 2024 20:20:01 GMT</lastBuildDate>
<item>
<guid isPermaLink="true">https://www.globenewswire.com/news-release/2024/08/01/2922311/0/en/Wells-Fargo-Announces-Quarterly-Common-Stock-Dividend.html</guid>
<link>https://www.globenewswire.com/news-release/2024/08/01/2922311/0/en/Wells-Fargo-Announces-Quarterly-Common-Stock-Dividend.html</link>
<category domain="https://www.globenewswire.com/rss/subject/ACS/Dividend+Reports+and+Estimates">Dividend Reports and Estimates</category>
<dc:identifier>2922311</dc:identifier>
<title>Wells Fargo Announces Quarterly Common Stock Dividend</title>
<description><![CDATA[<p>SAN FRANCISCO, Aug.  01, 2024  (GLOBE NEWSWIRE) -- Wells Fargo &amp; Company (NYSE: WFC) said today its board of directors approved a quarterly common stock dividend ...</p>]]></description>
<pubDate>Thu, 01 Aug 2024 20:15:00 GMT</pubDate>
<dc:creator>Wells Fargo &amp; Company</dc:creator>
<dc:contributor>Wells Fargo &amp; Company</dc:contributor>
<dc:language>en</dc:language>
</item>
<item>
<guid isPermaLink="true">https://www.globenewswire.com/news-release/2024/08/01/2922290/0/en/Abbott-Reports-Results-of-Phase-3-Study.html</guid>
<link>https://www.globenewswire.com/news-release/2024/08/01/2922290/0/en/Abbott-Reports-Results-of-Phase-3-Study.html</link>
<category domain="https://www.globenewswire.com/rss/subject/ACS/Clinical+Study">Clinical Study</category>
<dc:identifier>2922290</dc:identifier>
<title>Study Results Presented at Medical Meeting</title>
<description><![CDATA[<p>ABBOTT PARK, Ill., Aug.  01, 2024  (GLOBE NEWSWIRE) -- Abbott (NYSE: ABT) today announced results from a late-stage study ...</p>]]></description>
<pubDate>Thu, 01 Aug 2024 19:02:00 GMT</pubDate>
<dc:creator>Abbott</dc:creator>
<dc:contributor>Abbott</dc:contributor>
</item>
</channel>
</rss>
"""
PRNEWSWIRE = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom">
<channel>
<title>PR Newswire: news releases</title>
<link>https://www.prnewswire.com/news-releases/news-releases-list/</link>
<description>Latest news releases distributed by PR Newswire</description>
<language>en-us</language>
<atom:link href="https://www.prnewswire.com/rss/news-releases-list.rss" rel="self" type="application/rss+xml"/>
<item>
<title>Caterpillar Inc. Completes Sale of a Product Line</title>
<link>https://www.prnewswire.com/news-releases/caterpillar-inc-completes-sale-of-a-product-line-302212345.html</link>
<description>IRVING, Texas, Aug. 1, 2024 /PRNewswire/ -- Caterpillar Inc. (NYSE: CAT) today announced it has completed the sale of ...</description>
<pubDate>Thu, 01 Aug 2024 10:30:00 -0400</pubDate>
<guid>https://www.prnewswire.com/news-releases/caterpillar-inc-completes-sale-of-a-product-line-302212345.html</guid>
<dc:creator>Caterpillar Inc.</dc:creator>
</item>
</channel>
</rss>
"""
BUSINESSWIRE = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel>
<title>Business Wire - Home page - All News</title>
<link>https://www.businesswire.com/portal/site/home/news/</link>
<description>Business Wire news releases</description>
<language>en-us</language>
<item>
<title>Microsoft Announces Quarterly Dividend</title>
<link>https://www.businesswire.com/news/home/20240801000000/en/Microsoft-Announces-Quarterly-Dividend</link>
<guid isPermaLink="false">20240801000000en</guid>
<pubDate>Thu, 01 Aug 2024 20:05:00 UT</pubDate>
<description>REDMOND, Wash.--(BUSINESS WIRE)--Microsoft Corp. (Nasdaq: MSFT) on Thursday announced that its board of directors declared a quarterly dividend ...</description>
<dc:creator>Microsoft Corp.</dc:creator>
</item>
</channel>
</rss>
"""

# --------------------------------------------------------------------------- the Federal Reserve
FED_PRESS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom">
<channel>
<title>FRB: Press Release - All</title>
<link>https://www.federalreserve.gov/feeds/press_all.html</link>
<description>Board of Governors of the Federal Reserve System - All Press Releases</description>
<language>en-us</language>
<atom:link href="https://www.federalreserve.gov/feeds/press_all.xml" rel="self" type="application/rss+xml"/>
<item>
<title>Federal Reserve issues FOMC statement</title>
<link>https://www.federalreserve.gov/newsevents/pressreleases/monetary20240731a.htm</link>
<guid isPermaLink="true">https://www.federalreserve.gov/newsevents/pressreleases/monetary20240731a.htm</guid>
<description>Federal Reserve issues FOMC statement</description>
<category>Monetary Policy</category>
<pubDate>Wed, 31 Jul 2024 18:00:00 GMT</pubDate>
</item>
</channel>
</rss>
"""

# --------------------------------------------------------------------------- a plain Atom news feed
ATOM_NEWS = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
<title>Example Business Desk</title>
<link href="https://news.example.org/business"/>
<id>tag:news.example.org,2024:business</id>
<updated>2024-08-01T18:00:00Z</updated>
<entry>
<title>Coca-Cola raises full-year outlook as prices hold</title>
<link href="https://news.example.org/business/2024/08/01/coca-cola-outlook"/>
<id>tag:news.example.org,2024:business/coca-cola-outlook</id>
<updated>2024-08-01T17:55:00Z</updated>
<summary>The beverage maker (NYSE: KO) lifted its forecast on Thursday.</summary>
</entry>
</feed>
"""

MALFORMED = "<?xml version='1.0'?>\n<rss version='2.0'><channel><title>Broken</title>\n<<< this is not XML >>>\n"
