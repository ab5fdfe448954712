package ur

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
)

// Style selects one of the three bytewords encodings of BCR-2020-012.
type Style int

const (
	// Standard separates four-letter words with spaces: "able acid also".
	Standard Style = iota
	// URI separates four-letter words with hyphens: "able-acid-also".
	URI
	// Minimal keeps only the first and last letter of each word, with no
	// separator: "aeadao". UR strings use this style.
	Minimal
)

// wordList is the BCR-2020-012 list of 256 four-letter words, in byte order.
const wordList = "" +
	"ableacidalsoapexaquaarchatomauntawayaxisbackbaldbarnbeltbetabias" +
	"bluebodybragbrewbulbbuzzcalmcashcatschefcityclawcodecolacookcost" +
	"cruxcurlcuspcyandarkdatadaysdelidicedietdoordowndrawdropdrumdull" +
	"dutyeacheasyechoedgeepicevenexamexiteyesfactfairfernfigsfilmfish" +
	"fizzflapflewfluxfoxyfreefrogfuelfundgalagamegeargemsgiftgirlglow" +
	"goodgraygrimgurugushgyrohalfhanghardhawkheathelphighhillholyhope" +
	"hornhutsicedideaidleinchinkyintoirisironitemjadejazzjoinjoltjowl" +
	"judojugsjumpjunkjurykeepkenokeptkeyskickkilnkingkitekiwiknoblamb" +
	"lavalazyleaflegsliarlimplionlistlogoloudloveluaulucklungmainmany" +
	"mathmazememomenumeowmildmintmissmonknailnavyneednewsnextnoonnote" +
	"numbobeyoboeomitonyxopenovalowlspaidpartpeckplaypluspoempoolpose" +
	"puffpumapurrquadquizraceramprealredorichroadrockroofrubyruinruns" +
	"rustsafesagascarsetssilkskewslotsoapsolosongstubsurfswantacotask" +
	"taxitenttiedtimetinytoiltombtoystriptunatwinuglyundouniturgeuser" +
	"vastveryvetovialvibeviewvisavoidvowswallwandwarmwaspwavewaxywebs" +
	"whatwhenwhizwolfworkyankyawnyellyogayurtzapszerozestzinczonezoom"

// minimalIndex maps the first and last letter of a word (26*first+last) to
// its byte value plus one; zero means no such word.
var minimalIndex = func() (t [26 * 26]uint16) {
	for i := 0; i < 256; i++ {
		w := wordList[4*i : 4*i+4]
		t[int(w[0]-'a')*26+int(w[3]-'a')] = uint16(i + 1)
	}
	return t
}()

// ErrChecksum reports a bytewords or message checksum that does not match.
var ErrChecksum = errors.New("checksum mismatch")

func word(b byte) string { return wordList[4*int(b) : 4*int(b)+4] }

// EncodeBytewords encodes data followed by its big-endian CRC-32 in the given
// style, in lowercase.
func EncodeBytewords(style Style, data []byte) string {
	buf := binary.BigEndian.AppendUint32(append([]byte(nil), data...), crc32.ChecksumIEEE(data))
	var sb strings.Builder
	switch style {
	case Minimal:
		sb.Grow(2 * len(buf))
		for _, b := range buf {
			w := word(b)
			sb.WriteByte(w[0])
			sb.WriteByte(w[3])
		}
	default:
		sep := byte(' ')
		if style == URI {
			sep = '-'
		}
		sb.Grow(5 * len(buf))
		for i, b := range buf {
			if i > 0 {
				sb.WriteByte(sep)
			}
			sb.WriteString(word(b))
		}
	}
	return sb.String()
}

// DecodeBytewords decodes lowercase bytewords in the given style, checks
// and strips the trailing CRC-32, and returns the data. Input must be
// canonical: lowercase, single separators, no leading or trailing space.
func DecodeBytewords(style Style, s string) ([]byte, error) {
	var out []byte
	switch style {
	case Minimal:
		if len(s)%2 != 0 {
			return nil, fmt.Errorf("bytewords: minimal text has odd length %d", len(s))
		}
		out = make([]byte, 0, len(s)/2)
		for i := 0; i < len(s); i += 2 {
			b, err := lookupMinimal(s[i], s[i+1])
			if err != nil {
				return nil, fmt.Errorf("bytewords: word %d: %w", i/2, err)
			}
			out = append(out, b)
		}
	case Standard, URI:
		sep := " "
		if style == URI {
			sep = "-"
		}
		words := strings.Split(s, sep)
		out = make([]byte, 0, len(words))
		for i, w := range words {
			if len(w) != 4 {
				return nil, fmt.Errorf("bytewords: word %d %q is not four letters", i, w)
			}
			b, err := lookupMinimal(w[0], w[3])
			if err != nil {
				return nil, fmt.Errorf("bytewords: word %d: %w", i, err)
			}
			if word(b) != w {
				return nil, fmt.Errorf("bytewords: word %d %q is not a byteword", i, w)
			}
			out = append(out, b)
		}
	default:
		return nil, fmt.Errorf("bytewords: unknown style %d", style)
	}
	if len(out) < 5 {
		return nil, fmt.Errorf("bytewords: %d bytes is too short to hold data and a checksum", len(out))
	}
	body, sum := out[:len(out)-4], binary.BigEndian.Uint32(out[len(out)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return nil, fmt.Errorf("bytewords: %w (frame corrupted; rescan it)", ErrChecksum)
	}
	return body, nil
}

func lookupMinimal(first, last byte) (byte, error) {
	if first < 'a' || first > 'z' || last < 'a' || last > 'z' {
		return 0, fmt.Errorf("%q is not a lowercase byteword", string([]byte{first, last}))
	}
	v := minimalIndex[int(first-'a')*26+int(last-'a')]
	if v == 0 {
		return 0, fmt.Errorf("%q is not a byteword", string([]byte{first, last}))
	}
	return byte(v - 1), nil
}

// Fingerprint returns a short human-comparable name for a whole message:
// the first four bytes of its SHA-256 as standard bytewords, for example
// "tuna acid draw oboe". Sender and receiver show it so that people can
// check that the same message crossed.
func Fingerprint(message []byte) string {
	sum := sha256.Sum256(message)
	words := make([]string, 4)
	for i := range words {
		words[i] = word(sum[i])
	}
	return strings.Join(words, " ")
}
